<?php
/**
 * Just enough of WordPress and WooCommerce to run the plugin examples (examples/) in the test
 * suite: hooks, options, one order. Not part of the package.
 */

declare(strict_types=1);

final class WpStub
{
    /** @var array<string, list<callable>> */
    public static array $actions = [];
    /** @var array<string, mixed> */
    public static array $options = [];
    /** @var array<string, mixed> the Client configuration the examples' filter adds to */
    public static array $clientConfig = [];
    public static ?WC_Order $order = null;
}

function add_action(string $hook, callable $fn): void
{
    WpStub::$actions[$hook][] = $fn;
}

function do_action(string $hook, mixed ...$args): void
{
    foreach (WpStub::$actions[$hook] ?? [] as $fn) {
        $fn(...$args);
    }
}

function add_filter(string $hook, callable $fn): void
{
}

function apply_filters(string $hook, mixed $value): mixed
{
    return $hook === 'freight_client_config' ? array_replace($value, WpStub::$clientConfig) : $value;
}

function get_option(string $name, mixed $default = false): mixed
{
    return WpStub::$options[$name] ?? $default;
}

function update_option(string $name, mixed $value): bool
{
    WpStub::$options[$name] = $value;
    return true;
}

function wp_next_scheduled(string $hook): int|false
{
    return false;
}

function wp_schedule_event(int $time, string $recurrence, string $hook): bool
{
    return true;
}

function get_current_blog_id(): int
{
    return 1;
}

function wp_json_encode(mixed $value): string|false
{
    return json_encode($value);
}

function WC(): object
{
    return (object) ['version' => '9.4.2'];
}

function wc_get_order(int $id): WC_Order|false
{
    return WpStub::$order !== null && $id === 10423 ? WpStub::$order : false;
}

final class WC_Product
{
    public function get_sku(): string
    {
        return 'SKU-1001';
    }
}

final class WC_Order_Item_Product
{
    public function get_product(): ?WC_Product
    {
        return new WC_Product();
    }

    public function get_product_id(): int
    {
        return 7;
    }

    public function get_quantity(): int
    {
        return 2;
    }
}

final class WC_Order
{
    /** @var array<string, mixed> */
    public array $meta = [];

    /** @return list<WC_Order_Item_Product> */
    public function get_items(): array
    {
        return [new WC_Order_Item_Product()];
    }

    public function get_item_total(WC_Order_Item_Product $item): float
    {
        return 64.95;
    }

    public function update_meta_data(string $key, mixed $value): void
    {
        $this->meta[$key] = $value;
    }

    public function save(): int
    {
        return 10423;
    }

    /** @param list<mixed> $args */
    public function __call(string $name, array $args): mixed
    {
        return match ($name) {
            'get_total' => '129.90',
            'get_currency' => 'EUR',
            'get_order_number' => '10423',
            'get_item_count' => 2,
            'get_customer_id' => 42,
            'get_billing_email' => 'Jane.Doe@Example.com',
            'get_billing_phone' => '+1 650 555 0142',
            'get_billing_first_name' => 'Jane',
            'get_billing_last_name' => 'Doe',
            'get_billing_city' => 'Menlo Park',
            'get_billing_state' => 'CA',
            'get_billing_postcode' => '94025',
            'get_billing_country' => 'US',
            'get_customer_ip_address' => '203.0.113.9',
            'get_customer_user_agent' => 'Mozilla/5.0 (X11; Linux x86_64)',
            'get_checkout_order_received_url' => 'https://shop.example/checkout/order-received/10423',
            default => throw new BadMethodCallException($name),
        };
    }
}
