<?php

declare(strict_types=1);

namespace Freight\Tests;

use Freight\Freight;
use Freight\ValidationException;
use PHPUnit\Framework\TestCase;

final class PlatformTest extends TestCase
{
    public function testSegmentFixture(): void
    {
        $lines = file(dirname(__DIR__, 3) . '/tests/fixtures/segment.jsonl', FILE_IGNORE_NEW_LINES);
        $this->assertGreaterThanOrEqual(40, count($lines));
        foreach ($lines as $line) {
            // Objects stay objects (an empty {} must not become []).
            $raw = json_decode($line, false, 512, JSON_THROW_ON_ERROR);
            $case = json_decode($line, true, 512, JSON_THROW_ON_ERROR);
            $call = is_object($raw->call) ? (array) $raw->call : $raw->call;
            if (!is_array($call) || array_is_list($call)) {
                continue; // a JSON array is not a call; the C and Rust suites cover it
            }
            $call = json_decode(json_encode($raw->call), true);
            try {
                $event = Freight::segment($call, $case['options'] ?? []);
                $this->assertArrayHasKey('event', $case, $case['name']);
                $this->assertEquals($case['event'], $event, $case['name']);
            } catch (ValidationException $e) {
                $this->assertArrayHasKey('errors', $case, $case['name'] . ': ' . $e->getMessage());
                $this->assertSame($case['errors'][0][0], $e->getType(), $case['name']);
                $this->assertSame(
                    $case['errors'],
                    array_map(static fn (array $p): array => [$p['type'], $p['loc']], $e->errors()),
                    $case['name']
                );
            }
        }
    }

    public function testSegmentOptionsMapsMayBeEmpty(): void
    {
        $call = ['type' => 'track', 'event' => 'Order Completed', 'userId' => 'u1',
            'properties' => ['revenue' => 5]];
        $event = Freight::segment($call, ['event_map' => [], 'category_map' => []]);
        $this->assertSame('Purchase', $event['event_name']);
        $event = Freight::segment($call, ['event_map' => ['Order Completed' => 'Subscribe']]);
        $this->assertSame('Subscribe', $event['event_name']);
    }

    public function testClickIdsFixture(): void
    {
        foreach (freight_fixture('click_ids.jsonl') as $c) {
            $ctx = array_intersect_key($c, array_flip(['host', 'url', 'referrer', 'fbc_cookie', 'fbp_cookie', 'now_ms', 'random']));
            $ids = Freight::clickIds($ctx);
            $this->assertSame($c['expect']['fbc'], $ids['fbc'], $c['name']);
            $this->assertSame($c['expect']['fbp'], $ids['fbp'], $c['name']);
            $cookies = array_map(static fn ($k) => [$k['name'], $k['value'], $k['domain']], $ids['cookies_to_set']);
            $this->assertSame($c['expect']['cookies_to_set'], $cookies, $c['name']);
        }
    }

    public function testPartnerAgentAndEventIds(): void
    {
        $this->assertSame('plshopbuilder-4.2-1.0.3', Freight::partnerAgent('shopbuilder', '4.2', '1.0.3'));
        $this->assertSame('pldatapartner-1.0', Freight::partnerAgent('DataPartner', '1.0'));
        $a = Freight::eventId('order-1', 's3cret', '1', 'Purchase');
        $this->assertSame($a, Freight::eventId('order-1', 's3cret', '1', 'Purchase'));
        $this->assertNotSame(Freight::eventId(), Freight::eventId());
        foreach ([[' ', 'Purchase', 'key is blank'], ['B', 'Custom|A', 'must not contain |']] as [$key, $name, $why]) {
            try {
                Freight::eventId($key, 's3cret', '1', $name);
                $this->fail("accepted: $key, $name");
            } catch (ValidationException $e) {
                $this->assertStringContainsString($why, $e->getMessage());
            }
        }
        $this->expectException(ValidationException::class);
        Freight::partnerAgent('shop builder', '4', '1');
    }
}
