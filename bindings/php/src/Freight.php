<?php

declare(strict_types=1);

namespace Freight;

/**
 * Freight's stateless operations: normalize and hash customer information, prepare events.
 *
 * Events are arrays in the Conversions API JSON shape; customer information (`user_data`) may
 * be plain text: Freight normalizes and hashes it as Meta requires.
 */
final class Freight
{
    /** The library version, e.g. "0.1.0". */
    public static function version(): string
    {
        return Library::ffi()->freight_version();
    }

    /**
     * Normalizes one value of a `user_data` key ("em", "ph", "fn", …); with `$hash`, returns
     * what goes on the wire (the SHA-256). Returns null when the value is empty (it is dropped,
     * never hashed). Options: default_country, date_order ("mdy"|"dmy"), hash_external_id,
     * md5_passthrough.
     *
     * @param array<string, mixed> $options
     * @throws ValidationException for an unusable value; getType() is e.g. "invalid_email"
     */
    public static function normalize(string $field, string $value, array $options = [], bool $hash = false): ?string
    {
        $result = self::normalizeDetailed($field, $value, $options);
        return $hash ? $result['hash'] : $result['normalized'];
    }

    /**
     * Like normalize(), with everything: ['normalized' => …, 'hash' => …, 'warning' => …].
     *
     * @param array<string, mixed> $options
     * @return array{normalized: ?string, hash: ?string, warning?: string}
     */
    public static function normalizeDetailed(string $field, string $value, array $options = []): array
    {
        $ffi = Library::ffi();
        $opts = $options === [] ? null : Library::json((object) $options);
        $json = Library::callForString(fn ($out) => $ffi->freight_normalize(
            $field,
            strlen($field),
            $value,
            strlen($value),
            $opts,
            $opts === null ? 0 : strlen($opts),
            $out
        ));
        return Library::decode($json);
    }

    /**
     * Prepares events without sending them: ['events' => [['index', 'event', 'warnings']],
     * 'rejected' => [['index', 'errors' => [['type', 'loc', 'msg']], 'warnings']]]. Every input
     * index appears once.
     *
     * @param list<array<string, mixed>> $events
     * @param array<string, mixed> $options
     * @return array{events: list<array<string, mixed>>, rejected: list<array<string, mixed>>}
     */
    public static function prepare(array $events, array $options = [], ?int $now = null): array
    {
        $ffi = Library::ffi();
        $eventsJson = Library::json(array_values($events));
        $opts = $options === [] ? null : Library::json((object) $options);
        $json = Library::callForString(fn ($out) => $ffi->freight_prepare(
            $eventsJson,
            strlen($eventsJson),
            $opts,
            $opts === null ? 0 : strlen($opts),
            $now ?? 0,
            $out
        ));
        return Library::decode($json);
    }
}
