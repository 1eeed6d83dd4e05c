<?php
/**
 * Outbox enqueue latency from PHP: one page event per call, p50/p99 over 5,000 calls.
 *
 *   FREIGHT_LIBRARY=target/release/libfreight.so php bench/php/enqueue.php
 */

declare(strict_types=1);

require __DIR__ . '/../../bindings/php/tests/bootstrap.php';

use Freight\Outbox;

$path = sys_get_temp_dir() . '/freight-php-enqueue-' . getmypid() . '.db';
@unlink($path);
$outbox = new Outbox($path);
$now = time();
$samples = [];
for ($i = 0; $i < 5000; $i++) {
    $event = ['event_name' => 'Purchase', 'event_time' => $now - 5, 'action_source' => 'website',
        'event_id' => "order-$i", 'event_source_url' => 'https://shop.example/t',
        'user_data' => ['em' => "c$i@example.com", 'ph' => '+1 650 555 0100',
            'client_user_agent' => 'Mozilla/5.0', 'client_ip_address' => '203.0.113.1',
            'fbp' => 'fb.1.1795391000000.123456'],
        'custom_data' => ['value' => 42.5, 'currency' => 'EUR']];
    $t = hrtime(true);
    $outbox->enqueue('shop-1', [$event]);
    $samples[] = (hrtime(true) - $t) / 1e3;
}
sort($samples);
$p = fn (float $q) => $samples[(int) ((count($samples) - 1) * $q)];
printf("php enqueue: p50 %.0f µs  p99 %.0f µs  (n=%d)\n", $p(0.5), $p(0.99), count($samples));
unset($outbox);
@unlink($path);
