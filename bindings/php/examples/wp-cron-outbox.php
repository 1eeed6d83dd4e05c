<?php
/**
 * WP-cron style: the purchase hook only enqueues (well under a millisecond); a cron event
 * flushes every minute. Tokens stay in the plugin's options, never in the outbox file.
 */

declare(strict_types=1);

use Freight\Client;
use Freight\Outbox;

function freight_outbox(): Outbox
{
    static $outbox = null;
    return $outbox ??= new Outbox(WP_CONTENT_DIR . '/uploads/freight-outbox.db');
}

add_action('woocommerce_payment_complete', static function (int $orderId): void {
    $event = freight_purchase_event(wc_get_order($orderId));   // as in woocommerce.php
    $report = freight_outbox()->enqueue('site-' . get_current_blog_id(), [$event]);
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
    $key = 'site-' . get_current_blog_id();
    $report = freight_outbox()->flush(new Client(['partner_agent' => 'plmyplugin-1.0-1.0']), [
        $key => ['pixel_id' => get_option('freight_pixel_id'), 'access_token' => get_option('freight_access_token')],
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
