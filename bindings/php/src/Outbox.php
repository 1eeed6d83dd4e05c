<?php

declare(strict_types=1);

namespace Freight;

use FFI;

/**
 * A durable local outbox: enqueue() in a page request (validates and stores, well under a
 * millisecond), flush() from a worker (WP-cron, a queue consumer). Tokens are never stored:
 * flush() receives them per destination key from the platform's own secret store.
 */
final class Outbox
{
    use OwnsNativeHandle;

    private ?FFI\CData $handle = null;

    /** @param array<string, mixed> $options normalization options (default_country, …) */
    public function __construct(string $path, array $options = [])
    {
        $ffi = Library::ffi();
        $opts = $options === [] ? null : Library::json((object) $options);
        $handle = $ffi->new('freight_outbox*');
        Library::check($ffi->freight_outbox_open($path, strlen($path), $opts, $opts === null ? 0 : strlen($opts), FFI::addr($handle)));
        $this->handle = $handle;
    }

    public function __destruct()
    {
        if ($this->handle !== null && !FFI::isNull($this->handle)) {
            Library::ffi()->freight_outbox_free($this->handle);
        }
        $this->handle = null;
    }

    /**
     * Stores events for a destination key: ['stored' => n, 'duplicates' => n, 'rejected' => […],
     * 'skipped' => […], 'warnings' => […]]. Rejected events come back at once and are never
     * stored; an event without event_id is given one derived from its content.
     *
     * @param list<array<string, mixed>> $events
     * @return array<string, mixed>
     */
    public function enqueue(string $key, #[\SensitiveParameter] array $events): array
    {
        $ffi = Library::ffi();
        $json = Library::json(Library::events($events));
        return Library::decode(Library::callForString(fn ($o) => $ffi->freight_outbox_enqueue(
            $this->handle,
            $key,
            strlen($key),
            $json,
            strlen($json),
            $o
        )));
    }

    /**
     * Sends due events. $destinations maps keys to ['pixel_id' => …, 'access_token' => …];
     * other keys stay pending. Returns ['requests', 'delivered', 'failed', 'retried',
     * 'expired', 'pruned', 'paused' => [[key, reason]], 'unresolved' => [key], 'invalid' =>
     * [[key, reason]], 'stopped' => null or the storage error that ended the flush early,
     * 'interrupted' => false (no cancel flag from PHP)]: a key whose credentials cannot be used
     * holds back only its own events.
     *
     * @param array<string, array<string, string>> $destinations
     * @return array<string, mixed>
     */
    public function flush(Client $client, #[\SensitiveParameter] array $destinations): array
    {
        $ffi = Library::ffi();
        $json = Library::json((object) $destinations);
        $out = Library::out();
        $status = $ffi->freight_outbox_flush($this->handle, $client->handle(), $json, strlen($json), FFI::addr($out));
        return Library::decode(Library::take($status, $out));
    }

    /** @return array<string, mixed> ['pending', 'delivered', 'failed', 'expired', 'paused'] */
    public function stats(): array
    {
        $ffi = Library::ffi();
        return Library::decode(Library::callForString(fn ($o) => $ffi->freight_outbox_stats($this->handle, $o)));
    }

    /**
     * Re-queues the failed events of a destination key (null: of every key), and with $expired
     * the expired ones still inside Meta's window; returns how many.
     */
    public function requeue(?string $key = null, bool $expired = false): int
    {
        $count = Library::ffi()->new('uint64_t');
        Library::check(Library::ffi()->freight_outbox_requeue(
            $this->handle,
            $key,
            $key === null ? 0 : strlen($key),
            $expired ? 1 : 0,
            FFI::addr($count)
        ));
        return (int) $count->cdata;
    }

    /**
     * Stored events in a state ('pending', 'delivered', 'failed' or 'expired'), oldest first:
     * [['id', 'dest_key', 'state', 'attempts', 'last_error', 'event' => the wire event or
     * null when it cannot be read], …].
     *
     * @return list<array<string, mixed>>
     */
    public function list(string $state, int $limit = 100): array
    {
        $ffi = Library::ffi();
        $handle = $this->handle;
        return Library::decode(Library::callForString(fn ($o) => $ffi->freight_outbox_list(
            $handle,
            $state,
            strlen($state),
            max(0, $limit),
            $o
        )));
    }

    /** Lifts the circuit breaker of a destination key (after its token was fixed). */
    public function resume(string $key): void
    {
        Library::check(Library::ffi()->freight_outbox_resume($this->handle, $key, strlen($key)));
    }
}
