<?php
/**
 * The Conversions API event of a paid WooCommerce order, in plain text (Freight normalizes and
 * hashes the customer's data). Shared by woocommerce.php and wp-cron-outbox.php.
 *
 * The order number is the event_id, which the browser pixel must use too:
 *   fbq('track', 'Purchase', {value: 129.90, currency: 'EUR'}, {eventID: 'order-10423'});
 */

declare(strict_types=1);

/** @return array<string, mixed> */
function freight_purchase_event(WC_Order $order): array
{
    $contents = [];
    foreach ($order->get_items() as $item) {
        $contents[] = [
            'id' => (string) ($item->get_product()?->get_sku() ?: $item->get_product_id()),
            'quantity' => $item->get_quantity(),
            'item_price' => (float) $order->get_item_total($item),
        ];
    }
    return [
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
}
