<?php

declare(strict_types=1);

namespace Freight;

use FFI;

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
    public static function normalize(
        string $field,
        #[\SensitiveParameter] string $value,
        array $options = [],
        bool $hash = false
    ): ?string
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
    public static function normalizeDetailed(
        string $field,
        #[\SensitiveParameter] string $value,
        array $options = []
    ): array
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
     * 'rejected' => [['index', 'errors' => [['type', 'loc', 'msg']], 'warnings']],
     * 'skipped' => [['index', 'reason']]] (consent denied). Every input index appears once.
     *
     * @param list<array<string, mixed>> $events
     * @param array<string, mixed> $options
     * @return array{events: list<array<string, mixed>>, rejected: list<array<string, mixed>>, skipped: list<array<string, mixed>>}
     */
    public static function prepare(
        #[\SensitiveParameter] array $events,
        array $options = [],
        ?int $now = null
    ): array
    {
        $ffi = Library::ffi();
        $eventsJson = Library::json(Library::events($events));
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

    /**
     * Maps a CDP (Segment) track call to a Conversions API event (plain-text customer data,
     * ready for prepare() or Client::send()). Options: event_map, category_map, value_field,
     * external_id_field, action_source, default_currency.
     *
     * @param array<string, mixed> $call
     * @param array<string, mixed> $options
     * @return array<string, mixed> the event
     * @throws ValidationException listing every problem (errors(); getType() of the first)
     */
    public static function segment(#[\SensitiveParameter] array $call, array $options = []): array
    {
        $ffi = Library::ffi();
        $callJson = Library::json((object) $call);
        // The maps are JSON objects even when empty (PHP encodes an empty array as []).
        foreach (['event_map', 'category_map'] as $map) {
            if (isset($options[$map]) && is_array($options[$map])) {
                $options[$map] = (object) $options[$map];
            }
        }
        $opts = $options === [] ? null : Library::json((object) $options);
        $out = Library::decode(Library::callForString(fn ($o) => $ffi->freight_segment(
            $callJson,
            strlen($callJson),
            $opts,
            $opts === null ? 0 : strlen($opts),
            $o
        )));
        if (isset($out['errors'])) {
            $errors = array_map(
                static fn (array $p): array => ['type' => $p['type'], 'loc' => $p['loc'], 'msg' => $p['msg']],
                $out['errors']
            );
            $message = implode('; ', array_map(static fn (array $p): string => "{$p['type']}: {$p['loc']}: {$p['msg']}", $errors));
            throw new ValidationException($message, 'FREIGHT_RESULT_INVALID_VALUE', null, $errors);
        }
        return $out['event'];
    }

    /**
     * The documented partner_agent format: pl<partner>-<platform version>-<app version> (the
     * partner name lowercased; without an app version, pl<partner>-<platform version>).
     */
    public static function partnerAgent(string $partner, string $platformVersion, string $appVersion = ''): string
    {
        $ffi = Library::ffi();
        return Library::callForString(fn ($o) => $ffi->freight_partner_agent(
            $partner,
            strlen($partner),
            $platformVersion,
            strlen($platformVersion),
            $appVersion,
            strlen($appVersion),
            $o
        ));
    }

    /**
     * An event_id for the browser pixel and the server: random without $key; with a key (an
     * order id) and the platform's secret, the same id every time.
     */
    public static function eventId(
        ?string $key = null,
        #[\SensitiveParameter] string $secret = '',
        string $pixelId = '',
        string $eventName = ''
    ): string
    {
        $ffi = Library::ffi();
        if ($key === null) {
            return Library::callForString(fn ($o) => $ffi->freight_event_id(null, 0, null, 0, null, 0, null, 0, $o));
        }
        $out = Library::out();
        $status = $ffi->freight_event_id(
            $secret,
            strlen($secret),
            $pixelId,
            strlen($pixelId),
            $eventName,
            strlen($eventName),
            $key,
            strlen($key),
            FFI::addr($out)
        );
        return Library::take($status, $out);
    }

    /**
     * fbc/fbp for the current request (by default from $_SERVER and $_COOKIE), by the rules of
     * Meta's parameter builder: ['fbc' => …|null, 'fbp' => …, 'cookies_to_set' => [[name, value,
     * domain, max_age]]]. Set the returned cookies with setcookie().
     *
     * @param array<string, mixed>|null $context host, url, referrer, fbc_cookie, fbp_cookie, now_ms, random
     * @return array<string, mixed>
     */
    public static function clickIds(?array $context = null): array
    {
        $context ??= [
            'host' => $_SERVER['HTTP_HOST'] ?? 'localhost',
            'url' => $_SERVER['REQUEST_URI'] ?? null,
            'referrer' => $_SERVER['HTTP_REFERER'] ?? null,
            'fbc_cookie' => $_COOKIE['_fbc'] ?? null,
            'fbp_cookie' => $_COOKIE['_fbp'] ?? null,
        ];
        $ffi = Library::ffi();
        $json = Library::json((object) $context);
        return Library::decode(Library::callForString(fn ($o) => $ffi->freight_click_ids($json, strlen($json), $o)));
    }
}
