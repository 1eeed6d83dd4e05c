<?php
/**
 * WP-cron style: the purchase hook only enqueues (well under a millisecond); a cron event
 * flushes every minute. Tokens stay in the plugin's options, never in the outbox file.
 *
 * The outbox file holds the events until they are delivered (IP addresses, user agents): keep
 * it outside the web root, never under wp-content/uploads, which the web server serves. Set
 * FREIGHT_OUTBOX_PATH in wp-config.php to a file in a directory PHP can write.
 */

declare(strict_types=1);

use Freight\Client;
use Freight\Outbox;

require_once __DIR__ . '/purchase-event.php';

function freight_outbox(): Outbox
{
    static $outbox = null;
    $path = defined('FREIGHT_OUTBOX_PATH') ? FREIGHT_OUTBOX_PATH : dirname(ABSPATH) . '/freight-outbox.db';
    return $outbox ??= new Outbox($path);
}

function freight_destination_key(): string
{
    return 'site-' . get_current_blog_id();
}

add_action('woocommerce_payment_complete', static function (int $orderId): void {
    $order = wc_get_order($orderId);
    if (!$order) {
        return;
    }
    try {
        $report = freight_outbox()->enqueue(freight_destination_key(), [freight_purchase_event($order)]);
    } catch (\Throwable $e) {
        error_log("Freight: order $orderId not stored: " . $e->getMessage());   // never breaks the payment
        return;
    }
    foreach ($report['rejected'] as $r) {
        foreach ($r['errors'] as $p) {
            error_log("Freight: order $orderId: {$p['loc']}: {$p['msg']}");
        }
    }
});

add_filter('cron_schedules', static fn (array $s) => $s + ['every_minute' => ['interval' => 60, 'display' => 'Every minute']]);
if (!wp_next_scheduled('freight_flush')) {
    wp_schedule_event(time(), 'every_minute', 'freight_flush');
}
add_action('freight_flush', static function (): void {
    $key = freight_destination_key();
    $client = new Client(apply_filters('freight_client_config', ['partner_agent' => 'plmyplugin-1.0-1.0']));
    $report = freight_outbox()->flush($client, [
        $key => [
            'pixel_id' => (string) get_option('freight_pixel_id', ''),
            'access_token' => (string) get_option('freight_access_token', ''),
        ],
    ]);
    foreach ($report['paused'] as [$k, $reason]) {
        // e.g. an expired token: show it to the site owner; events wait, nothing is lost.
        update_option('freight_paused_reason', $reason);
    }
    foreach ($report['invalid'] as [$k, $reason]) {
        // the settings hold no usable credentials (an empty token): the events wait for them.
        update_option('freight_paused_reason', $reason);
    }
    if ($report['stopped'] !== null) {
        // the outbox file could not be written (a full disk): the next run carries on.
        error_log('freight: the flush stopped early: ' . $report['stopped']);
    }
});
