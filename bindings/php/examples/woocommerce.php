<?php
/**
 * Plugin Name: Freight Conversions API (example)
 * Description: Sends WooCommerce purchases to Meta's Conversions API through Freight.
 *
 * A sketch of a plugin: the pixel id and token come from the plugin's settings. The purchase
 * is sent while the payment request waits, so the send has a short budget (5 s, one retry);
 * an event that is not delivered is kept on the order for a later try. To send without making
 * the customer wait, enqueue to an outbox instead (wp-cron-outbox.php).
 */

declare(strict_types=1);

use Freight\Client;

require_once __DIR__ . '/purchase-event.php';

function freight_client(): Client
{
    static $client = null;
    // One per PHP process: it keeps its connections to Meta between requests of the worker.
    return $client ??= new Client(apply_filters('freight_client_config', [
        'partner_agent' => 'plwoocommerce-' . WC()->version . '-1.0',
        'deadline_ms' => 5000,               // the default (15 min) suits a worker, not a page
        'retry' => ['max_attempts' => 2],
    ]));
}

add_action('woocommerce_payment_complete', static function (int $orderId): void {
    $order = wc_get_order($orderId);
    if (!$order) {
        return;
    }
    $event = freight_purchase_event($order);
    try {
        $report = freight_client()->send(
            [$event],
            pixelId: (string) get_option('freight_pixel_id', ''),
            accessToken: (string) get_option('freight_access_token', ''),
            testEventCode: ((string) get_option('freight_test_event_code', '')) ?: null,
        );
    } catch (\Throwable $e) {
        // Never break the payment: the plugin is not configured yet (an empty token), or
        // libfreight cannot be loaded. The messages never hold the token.
        error_log("Freight: order $orderId not sent: " . $e->getMessage());
        // The plain-text event here, the wire event below: either can be sent again as is.
        $order->update_meta_data('_freight_pending_event', wp_json_encode($event));
        $order->save();
        return;
    }
    foreach ($report['rejected'] as $r) {
        foreach ($r['errors'] as $p) {
            error_log("Freight: order $orderId: {$p['loc']}: {$p['msg']}");   // never the value
        }
    }
    foreach ($report['failed'] as $f) {
        error_log("Freight: order $orderId not delivered: {$f['error']['kind']}");
        $order->update_meta_data('_freight_pending_event', wp_json_encode($f['event']));
        $order->save();
    }
});
