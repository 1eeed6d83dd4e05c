<?php
/**
 * Sends 10,000 standard Purchase events (plain-text customer data) to a Graph sandbox through
 * the PHP package, in 1000-event batches, and prints events/s.
 *
 *   target/release/freight sandbox --port 0 &        # prints the URL
 *   FREIGHT_LIBRARY=target/release/libfreight.so php bench/php/send.php http://127.0.0.1:PORT
 */

declare(strict_types=1);

require __DIR__ . '/../../bindings/php/tests/bootstrap.php';

use Freight\Client;

$url = $argv[1] ?? exit("usage: php send.php SANDBOX_URL [EVENTS]\n");
$n = (int) ($argv[2] ?? 10000);
$now = time();
$events = [];
for ($i = 0; $i < $n; $i++) {
    $events[] = [
        'event_name' => 'Purchase', 'event_time' => $now - 60, 'action_source' => 'website',
        'event_id' => "order-$i", 'event_source_url' => 'https://shop.example.com/checkout/thank-you',
        'user_data' => [
            'em' => "  Customer.$i@Example.com ", 'ph' => sprintf('+1 (650) 555-%04d', $i % 10000),
            'fn' => 'Jane', 'ln' => 'Doe-Smith', 'ct' => 'Menlo Park', 'st' => 'California',
            'zp' => '94025', 'country' => 'US', 'external_id' => "cust-$i",
            'client_ip_address' => '203.0.113.24',
            'client_user_agent' => 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36',
            'fbc' => 'fb.1.1795300000000.IwAR2F4-dbP0l7Mn1IawQQGCINEz7PYXQvwjNwB_qa2ofrHyiLjcbCRxTDMgk',
            'fbp' => 'fb.1.1795200000000.' . (1000000000 + $i),
        ],
        'custom_data' => ['value' => 129.9, 'currency' => 'usd', 'contents' => [
            ['id' => 'SKU-1001', 'quantity' => 1, 'item_price' => 79.9],
            ['id' => 'SKU-2040', 'quantity' => 2, 'item_price' => 20.0],
            ['id' => 'SKU-3300', 'quantity' => 1, 'item_price' => 10.0],
        ]],
    ];
}
$client = new Client(['graph_url' => $url]);
$start = hrtime(true);
$delivered = 0;
foreach (array_chunk($events, 1000) as $batch) {
    $report = $client->send($batch, '1234567890', 'sandbox-token');
    $delivered += $report['counts']['delivered'];
}
$secs = (hrtime(true) - $start) / 1e9;
printf("php: %d of %d events delivered in %.2f s: %.0f events/s\n", $delivered, $n, $secs, $n / $secs);
