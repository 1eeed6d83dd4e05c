<?php

declare(strict_types=1);

namespace Freight\Tests;

use Freight\Client;
use Freight\FreightException;
use Freight\Outbox;
use PHPUnit\Framework\TestCase;

final class OutboxTest extends TestCase
{
    public function testEnqueueThenFlush(): void
    {
        freight_sandbox_post('/__sandbox/reset');
        $path = sys_get_temp_dir() . '/freight-php-outbox-' . getmypid() . '.db';
        @unlink($path);
        $outbox = new Outbox($path);
        $events = [];
        for ($i = 0; $i < 4; $i++) {
            $events[] = ['event_name' => 'Lead', 'event_time' => time() - 5, 'action_source' => 'email',
                'event_id' => "php-outbox-$i", 'user_data' => ['em' => "p$i@example.com"]];
        }
        $events[] = ['event_name' => 'Lead', 'event_time' => time(), 'action_source' => 'email', 'user_data' => ['em' => 'bad']];
        $r = $outbox->enqueue('shop-1', $events);
        $this->assertSame(4, $r['stored']);
        $this->assertSame('invalid_email', $r['rejected'][0]['errors'][0]['type']);
        $this->assertSame(4, $outbox->enqueue('shop-1', $events)['duplicates']);
        $this->assertSame(4, $outbox->stats()['pending']);
        $client = new Client(['graph_url' => freight_sandbox_url()]);
        $f = $outbox->flush($client, ['shop-1' => ['pixel_id' => '555', 'access_token' => 'sandbox-token']]);
        $this->assertSame(4, $f['delivered']);
        $this->assertSame(0, $outbox->stats()['pending']);
        $this->assertCount(4, freight_sandbox_get('/__sandbox/events'));
        // Stored events stay inspectable; nothing failed, so nothing is re-queued.
        $delivered = $outbox->list('delivered', 3);
        $this->assertCount(3, $delivered);
        $this->assertSame('php-outbox-0', $delivered[0]['event']['event_id']);
        $this->assertSame('delivered', $delivered[0]['state']);
        $this->assertSame(0, $outbox->requeue());
        $this->assertSame(0, $outbox->requeue('shop-1', true));
        // An empty key (a plugin's unset setting) is no request for every tenant's events.
        try {
            $outbox->requeue('');
            $this->fail('an empty key was taken for every destination');
        } catch (\Freight\ValidationException $e) {
            $this->assertStringContainsString('key is empty', $e->getMessage());
            $this->assertNull($e->getType());
        }
        try {
            $outbox->list('lost');
            $this->fail('an unknown state was accepted');
        } catch (\Freight\ValidationException $e) {
            $this->assertStringContainsString('pending, delivered, failed or expired', $e->getMessage());
        }
        $this->assertSame(0600, fileperms($path) & 0777);
        unset($outbox);
        @unlink($path);
        $this->expectException(FreightException::class);
        new Outbox('/nonexistent-dir/x.db');
    }
}
