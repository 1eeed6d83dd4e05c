<?php

declare(strict_types=1);

namespace Freight\Tests;

use PHPUnit\Framework\TestCase;

/**
 * The plugin examples (examples/*.php) run as written, against the sandbox, with just enough
 * of WordPress and WooCommerce (wordpress-stubs.php): a purchase is delivered, a plugin that is
 * not configured or a Meta that cannot be reached never breaks the payment and keeps the event.
 */
final class ExamplesTest extends TestCase
{
    /** The temporary files' common prefix. */
    private static string $tmp;
    private string $log;

    public static function setUpBeforeClass(): void
    {
        require_once __DIR__ . '/wordpress-stubs.php';
        self::$tmp = sys_get_temp_dir() . '/freight-php-examples-' . getmypid();
        define('FREIGHT_OUTBOX_PATH', self::$tmp . '-outbox.db');
        // Only the address: the examples' own budgets and retries are what is tested.
        \WpStub::$clientConfig = ['graph_url' => freight_sandbox_url()];
        require_once dirname(__DIR__) . '/examples/woocommerce.php';
        require_once dirname(__DIR__) . '/examples/wp-cron-outbox.php';
    }

    public static function tearDownAfterClass(): void
    {
        // The outbox stays open until the process ends (Linux removes open files at close).
        foreach (['', '-wal', '-shm'] as $suffix) {
            @unlink(FREIGHT_OUTBOX_PATH . $suffix);
        }
        @unlink(self::$tmp . '-error.log');
    }

    protected function setUp(): void
    {
        freight_sandbox_post('/__sandbox/reset');
        \WpStub::$options = ['freight_pixel_id' => '1234567890', 'freight_access_token' => 'sandbox-token'];
        \WpStub::$order = new \WC_Order();
        $this->log = self::$tmp . '-error.log';
        @unlink($this->log);
        ini_set('error_log', $this->log);
    }

    protected function tearDown(): void
    {
        ini_restore('error_log');
    }

    /** The woocommerce.php hook only (the outbox example's hook is the second). */
    private function pay(): void
    {
        \WpStub::$actions['woocommerce_payment_complete'][0](10423);
    }

    public function testThePurchaseIsSentWhileThePaymentWaits(): void
    {
        $this->pay();
        $events = freight_sandbox_get('/__sandbox/events');
        $this->assertCount(1, $events);
        $this->assertSame('order-10423', $events[0]['event']['event_id']);
        $this->assertSame(hash('sha256', 'jane.doe@example.com'), $events[0]['event']['user_data']['em'][0]);
        $this->assertSame([], \WpStub::$order->meta);
        $this->assertFileDoesNotExist($this->log);
    }

    public function testAPluginNotConfiguredKeepsTheEventAndNeverBreaksThePayment(): void
    {
        \WpStub::$options = ['freight_pixel_id' => '1234567890'];   // no token yet
        $this->pay();
        $this->assertArrayHasKey('_freight_pending_event', \WpStub::$order->meta);
        $this->assertStringContainsString('order 10423 not sent: ', (string) file_get_contents($this->log));
        $this->assertSame([], freight_sandbox_get('/__sandbox/events'));
    }

    public function testMetaOutOfReachDoesNotHoldThePaymentLong(): void
    {
        // Meta never answers: the default budget (15 min) would hold the payment that long.
        freight_sandbox_post('/__sandbox/faults', '{"kind":"hang","times":0}');
        $started = microtime(true);
        $this->pay();
        $took = microtime(true) - $started;
        $this->assertLessThan(6.0, $took, 'the 5 s budget bounds the wait');
        $this->assertGreaterThan(1.5, $took, 'an attempt waited for its answer');
        $kept = json_decode(\WpStub::$order->meta['_freight_pending_event'], true);
        $this->assertSame('order-10423', $kept['event_id']);
        $this->assertStringContainsString('not delivered: network', (string) file_get_contents($this->log));
    }

    public function testTheOutboxExampleEnqueuesThenFlushesFromCron(): void
    {
        \WpStub::$actions['woocommerce_payment_complete'][1](10423);
        $this->assertSame(1, freight_outbox()->stats()['pending']);
        $this->assertSame([], freight_sandbox_get('/__sandbox/events'), 'the payment only stores');
        do_action('freight_flush');
        $this->assertSame(1, freight_outbox()->stats()['delivered']);
        $this->assertSame('order-10423', freight_sandbox_get('/__sandbox/events')[0]['event']['event_id']);
        $this->assertFileExists(FREIGHT_OUTBOX_PATH);
    }
}
