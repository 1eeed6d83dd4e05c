<?php
/**
 * Plugin Name: Freight Conversions API (example)
 * Description: Sends WooCommerce purchases to Meta's Conversions API through Freight.
 *
 * A sketch of a plugin: the pixel id and token come from the plugin's settings; the order
 * number is the event_id, which the browser pixel must use too:
 *   fbq('track', 'Purchase', {value: 129.90, currency: 'EUR'}, {eventID: 'order-10423'});
 */

declare(strict_types=1);

use Freight\Client;

add_action('woocommerce_payment_complete', static function (int $orderId): void {
    $order = wc_get_order($orderId);
    if (!$order) {
        return;
    }
    static $client = null;
    $client ??= new Client(['partner_agent' => 'plwoocommerce-' . WC()->version . '-1.0']);

    $contents = [];
    foreach ($order->get_items() as $item) {
        $contents[] = [
            'id' => (string) ($item->get_product()?->get_sku() ?: $item->get_product_id()),
            'quantity' => $item->get_quantity(),
            'item_price' => (float) $order->get_item_total($item),
        ];
    }
    $event = [
        'event_name' => 'Purchase',
        'event_time' => time(),
        'action_source' => 'website',
        'event_id' => 'order-' . $order->get_order_number(),
        'event_source_url' => $order->get_checkout_order_received_url(),
        'user_data' => array_filter([
            'em' => $order->get_billing_email(),
            'ph' => $order->get_billing_phone(),
            'fn' => $order->get_billing_first_name(),
            'ln' => $order->get_billing_last_name(),
            'ct' => $order->get_billing_city(),
            'st' => $order->get_billing_state(),
            'zp' => $order->get_billing_postcode(),
            'country' => $order->get_billing_country(),
            'external_id' => (string) $order->get_customer_id(),
            'client_ip_address' => $order->get_customer_ip_address(),
            'client_user_agent' => $order->get_customer_user_agent(),
            'fbp' => $_COOKIE['_fbp'] ?? null,
            'fbc' => $_COOKIE['_fbc'] ?? null,
        ]),
        'custom_data' => [
            'value' => (float) $order->get_total(),
            'currency' => $order->get_currency(),
            'order_id' => (string) $order->get_order_number(),
            'contents' => $contents,
            'num_items' => $order->get_item_count(),
        ],
    ];

    $report = $client->send(
        [$event],
        pixelId: get_option('freight_pixel_id'),
        accessToken: get_option('freight_access_token'),
        testEventCode: get_option('freight_test_event_code') ?: null,
    );
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
