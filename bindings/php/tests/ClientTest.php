<?php

declare(strict_types=1);

namespace Freight\Tests;

use Freight\ApiException;
use Freight\Client;
use Freight\FreightException;
use Freight\TransportException;
use PHPUnit\Framework\TestCase;

final class ClientTest extends TestCase
{
    private const TOKEN = 'sandbox-token';

    private static function events(int $n, string $prefix = 'php'): array
    {
        $events = [];
        for ($i = 0; $i < $n; $i++) {
            $events[] = [
                'event_name' => 'Purchase',
                'event_time' => time() - 60,
                'action_source' => 'website',
                'event_id' => "$prefix-order-$i",
                'event_source_url' => 'https://shop.example/checkout/thanks',
                'user_data' => [
                    'em' => "Customer$i@Example.com",
                    'client_ip_address' => '203.0.113.9',
                    'client_user_agent' => 'Mozilla/5.0',
                ],
                'custom_data' => ['value' => 19.99, 'currency' => 'eur'],
            ];
        }
        return $events;
    }

    private function client(array $config = []): Client
    {
        return new Client($config + ['graph_url' => freight_sandbox_url(), 'timeout_ms' => 3000,
            'retry' => ['max_attempts' => 2, 'base_delay_ms' => 1, 'max_delay_ms' => 2]]);
    }

    public function testSendDeliversAndReports(): void
    {
        freight_sandbox_post('/__sandbox/reset');
        $events = self::events(3);
        $events[] = ['event_name' => 'Lead', 'event_time' => time(), 'action_source' => 'email',
            'user_data' => ['em' => 'not-an-email']];
        $report = $this->client(['partner_agent' => 'plfreight-php-1'])->send($events, '1234567890', self::TOKEN, 'TEST_PHP');
        $this->assertSame(4, $report['counts']['input']);
        $this->assertSame(3, $report['counts']['delivered']);
        $this->assertSame(1, $report['counts']['rejected']);
        $this->assertSame('invalid_email', $report['rejected'][0]['errors'][0]['type']);
        $requests = freight_sandbox_get('/__sandbox/requests');
        $this->assertSame('TEST_PHP', $requests[0]['test_event_code']);
        $this->assertSame('plfreight-php-1', $requests[0]['partner_agent']);
        $this->assertSame(hash('sha256', 'customer0@example.com'), $requests[0]['events'][0]['user_data']['em'][0]);
        // A rejected event is a problem too, as for Python's raise_for_status().
        try {
            Client::throwIfFailed($report);
            $this->fail('no exception');
        } catch (\Freight\ValidationException $e) {
            $this->assertSame('invalid_email', $e->getType());
            $this->assertSame('data[3].user_data.em', $e->errors()[0]['loc']);
        }
        Client::throwIfFailed($this->client()->send(self::events(2, 'ok'), '1234567890', self::TOKEN));
    }

    public function testFailuresBecomeTypedExceptions(): void
    {
        freight_sandbox_post('/__sandbox/reset');
        $client = $this->client();
        $report = $client->send(self::events(1), '1234567890', 'wrong-token');
        $this->assertSame(1, $report['counts']['failed']);
        try {
            Client::throwIfFailed($report);
            $this->fail('no exception');
        } catch (ApiException $e) {
            $this->assertSame('invalid_token', $e->getKind());
            $this->assertSame(190, $e->getGraphCode());
            $this->assertStringNotContainsString('wrong-token', $e->getMessage());
        }
        freight_sandbox_post('/__sandbox/faults', '{"kind":"reset","times":0}');
        $report = $client->send(self::events(1), '1234567890', self::TOKEN);
        freight_sandbox_post('/__sandbox/reset');
        try {
            Client::throwIfFailed($report);
            $this->fail('no exception');
        } catch (TransportException $e) {
            $this->assertStringContainsString('could not be reached', $e->getMessage());
        }
    }

    public function testDeniedConsentIsSkippedAndNeverSent(): void
    {
        freight_sandbox_post('/__sandbox/reset');
        $events = self::events(2, 'consent');
        $events[0]['consent'] = 'denied';
        $report = $this->client()->send($events, '1234567890', self::TOKEN);
        $this->assertSame(1, $report['counts']['skipped']);
        $this->assertSame([['index' => 0, 'reason' => 'consent_denied']], $report['skipped']);
        $accepted = freight_sandbox_get('/__sandbox/events');
        $this->assertCount(1, $accepted);
        $this->assertSame('consent-order-1', $accepted[0]['event']['event_id']);
    }

    public function testConnectionStatus(): void
    {
        $client = $this->client();
        $this->assertSame('ok', $client->testConnection('1234567890', self::TOKEN)['status']);
        $this->assertSame('invalid_token', $client->testConnection('1234567890', 'nope')['status']);
    }

    public function testBadConfigurationAndDestination(): void
    {
        try {
            new Client(['graph_url' => 'http://example.com']);
            $this->fail('no exception');
        } catch (FreightException $e) {
            $this->assertSame('FREIGHT_RESULT_INVALID_CONFIG', $e->getResult());
            $this->assertStringContainsString('loopback', $e->getMessage());
        }
        try {
            $this->client()->send(self::events(1), 'not-a-pixel', 'secret-token-php');
            $this->fail('no exception');
        } catch (FreightException $e) {
            $this->assertSame('FREIGHT_RESULT_INVALID_DESTINATION', $e->getResult());
            $this->assertStringNotContainsString('secret-token-php', $e->getMessage());
        }
    }

    public function testSecretsStayOutOfStackTraces(): void
    {
        $previous = ini_set('zend.exception_ignore_args', '0');
        try {
            foreach ([
                fn () => $this->client()->send(self::events(1), 'not-a-pixel', 'EAAB-trace-token', null, 'trace-app-secret'),
                fn () => $this->client()->testConnection('not-a-pixel', 'EAAB-trace-token'),
                // Not even encodable as JSON: json_encode fails on the array holding the token.
                fn () => $this->client()->send([], "\xff", 'EAAB-trace-token'),
                fn () => (new \Freight\Outbox(sys_get_temp_dir() . '/freight-trace-' . getmypid() . '.db'))
                    ->flush($this->client(), ['shop' => ['pixel_id' => "\xff", 'access_token' => 'EAAB-trace-token']]),
                fn () => \Freight\Freight::eventId('order-1', 'trace-app-secret', "\xff", 'Purchase'),
            ] as $call) {
                try {
                    $call();
                    $this->fail('no exception');
                } catch (FreightException $e) {
                    $trace = print_r($e->getTrace(), true) . $e->getTraceAsString() . $e;
                    $this->assertStringContainsString('SensitiveParameterValue', $trace);
                    $this->assertStringNotContainsString('EAAB-trace-token', $trace);
                    $this->assertStringNotContainsString('trace-app-secret', $trace);
                }
            }
        } finally {
            ini_set('zend.exception_ignore_args', (string) $previous);
            array_map('unlink', glob(sys_get_temp_dir() . '/freight-trace-' . getmypid() . '.db*') ?: []);
        }
    }

    public function testACopyCannotFreeTheHandleTwice(): void
    {
        $client = $this->client();
        try {
            $copy = clone $client;
            $this->fail('cloned');
        } catch (FreightException $e) {
            $this->assertStringContainsString('cannot be cloned', $e->getMessage());
        }
        try {
            serialize($client);
            $this->fail('serialized');
        } catch (FreightException $e) {
            $this->assertStringContainsString('cannot be serialized', $e->getMessage());
        }
        // The original still works, and is freed once when it goes.
        $report = $client->send(self::events(1, 'clone'), '1234567890', self::TOKEN);
        $this->assertSame(1, $report['counts']['delivered']);
        unset($client);
        gc_collect_cycles();
    }

    public function testOneEventMustBeInAList(): void
    {
        $event = self::events(1)[0];
        try {
            $this->client()->send($event, '1234567890', self::TOKEN);
            $this->fail('no exception');
        } catch (\Freight\ValidationException $e) {
            $this->assertSame('invalid_type', $e->getType());
            $this->assertSame('FREIGHT_RESULT_INVALID_ARGUMENT', $e->getResult());
        }
        // A collection keyed by order id is read in order.
        $keyed = ['a-1' => self::events(2, 'keyed')[0], 'b-2' => self::events(2, 'keyed')[1]];
        $report = $this->client()->send($keyed, '1234567890', self::TOKEN);
        $this->assertSame(2, $report['counts']['delivered']);
    }

    public function testManyClientsAreFreed(): void
    {
        for ($i = 0; $i < 50; $i++) {
            $c = $this->client();
            unset($c);
        }
        $this->assertTrue(true);
    }
}
