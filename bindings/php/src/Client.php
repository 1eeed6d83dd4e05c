<?php

declare(strict_types=1);

namespace Freight;

use FFI;

/**
 * A Conversions API client. One client serves any number of pixels; each request carries only
 * its own destination's token. The handle is freed when the object is destroyed.
 *
 * Configuration keys: graph_url (https, or http to a loopback sandbox), api_version,
 * partner_agent, timeout_ms (1500: the wait for Meta's answer once a request is sent; the
 * upload is not counted), deadline_ms, batch_size (1000), bisect, retry
 * (['max_attempts' => 5, …]), normalize (['default_country' => 'us', …]).
 */
final class Client
{
    use OwnsNativeHandle;

    private ?FFI\CData $handle = null;

    /** @param array<string, mixed> $config */
    public function __construct(array $config = [])
    {
        $ffi = Library::ffi();
        $json = Library::json((object) $config);
        $handle = $ffi->new('freight_client*');
        Library::check($ffi->freight_client_new($json, strlen($json), FFI::addr($handle)));
        $this->handle = $handle;
    }

    /** @internal the native handle, for Outbox::flush() */
    public function handle(): FFI\CData
    {
        if ($this->handle === null) {
            throw new FreightException('the client was freed');
        }
        return $this->handle;
    }

    public function __destruct()
    {
        if ($this->handle !== null && !FFI::isNull($this->handle)) {
            Library::ffi()->freight_client_free($this->handle);
        }
        $this->handle = null;
    }

    /**
     * Prepares and sends events to one pixel. Returns the report (an array): every event is
     * in exactly one of 'delivered', 'rejected' (local problems), 'failed' (with 'error' and
     * the wire 'event' to store and resend later) or 'skipped'; 'counts' sums them up.
     * Failed events are data: call Client::throwIfFailed($report) to turn them into an
     * exception instead. It blocks until every event is accounted for: retries of a throttled
     * batch may take up to 'deadline_ms' (15 minutes by default), so a web request that sends
     * itself wants a short one (['deadline_ms' => 5000, 'retry' => ['max_attempts' => 2]]),
     * or an Outbox.
     *
     * @param list<array<string, mixed>> $events
     * @return array<string, mixed>
     */
    public function send(
        #[\SensitiveParameter] array $events,
        string $pixelId,
        #[\SensitiveParameter] string $accessToken,
        ?string $testEventCode = null,
        #[\SensitiveParameter] ?string $appSecret = null
    ): array {
        $ffi = Library::ffi();
        $dest = self::destination($pixelId, $accessToken, $testEventCode, $appSecret);
        $eventsJson = Library::json(Library::events($events));
        $out = Library::out();
        $status = $ffi->freight_client_send(
            $this->handle,
            $dest,
            strlen($dest),
            $eventsJson,
            strlen($eventsJson),
            FFI::addr($out)
        );
        return Library::decode(Library::take($status, $out));
    }

    /**
     * Sends one test event and returns ['status' => 'ok'|'invalid_token'|'no_permission'|
     * 'pixel_not_found'|'throttled'|'unreachable', 'error' => …, 'fbtrace_id' => …].
     *
     * @return array<string, mixed>
     */
    public function testConnection(
        string $pixelId,
        #[\SensitiveParameter] string $accessToken,
        ?string $testEventCode = null,
        #[\SensitiveParameter] ?string $appSecret = null
    ): array {
        $ffi = Library::ffi();
        $dest = self::destination($pixelId, $accessToken, $testEventCode, $appSecret);
        $out = Library::out();
        $status = $ffi->freight_client_test_connection($this->handle, $dest, strlen($dest), FFI::addr($out));
        return Library::decode(Library::take($status, $out));
    }

    /**
     * Throws for the first problem of a report, as Python's raise_for_status():
     * ValidationException (with errors()) when events were rejected locally, TransportException
     * when Meta was not reached, ApiException when it answered with an error. Returns when
     * every event was delivered or skipped as asked (consent denied).
     *
     * @param array<string, mixed> $report
     * @throws ValidationException|TransportException|ApiException
     */
    public static function throwIfFailed(array $report): void
    {
        $rejected = $report['rejected'] ?? [];
        if ($rejected !== []) {
            $errors = [];
            foreach ($rejected as $r) {
                foreach ($r['errors'] as $e) {
                    $errors[] = $e;
                }
            }
            $first = $errors[0] ?? ['loc' => '', 'msg' => 'rejected', 'type' => 'invalid_value'];
            throw new ValidationException(
                count($rejected) . " event(s) rejected: {$first['loc']}: {$first['msg']}",
                'FREIGHT_RESULT_INVALID_VALUE',
                null,
                $errors
            );
        }
        $failure = $report['failed'][0] ?? null;
        if ($failure === null) {
            return;
        }
        $error = $failure['error'];
        if (($error['kind'] ?? '') === 'network') {
            throw new TransportException('Meta could not be reached: ' . ($error['message'] ?? 'network error'));
        }
        throw new ApiException($error);
    }

    private static function destination(
        string $pixelId,
        #[\SensitiveParameter] string $token,
        ?string $code,
        #[\SensitiveParameter] ?string $secret
    ): string
    {
        $dest = ['pixel_id' => $pixelId, 'access_token' => $token];
        if ($code !== null) {
            $dest['test_event_code'] = $code;
        }
        if ($secret !== null) {
            $dest['app_secret'] = $secret;
        }
        return Library::json($dest);
    }
}
