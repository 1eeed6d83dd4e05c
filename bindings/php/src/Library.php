<?php

declare(strict_types=1);

namespace Freight;

use FFI;

/**
 * Loads libfreight once, with the committed header include/freight.h, and wraps every call:
 * it checks each status, turns errors into exceptions, and frees every string the library
 * returns (in `finally`, whatever happens).
 *
 * Paths: FREIGHT_LIBRARY (the .so) and FREIGHT_HEADER (freight.h) from the environment,
 * else the repository's build output and include/ relative to this package.
 *
 * @internal
 */
final class Library
{
    private static ?FFI $ffi = null;

    public static function ffi(): FFI
    {
        if (self::$ffi === null) {
            if (!extension_loaded('ffi')) {
                throw new FreightException('the PHP FFI extension is not loaded; see bindings/php/README.md');
            }
            // Preloaded with ffi.preload and FFI_SCOPE "freight" (php-fpm: README, ffi.enable).
            try {
                return self::$ffi = self::checked(FFI::scope('freight'));
            } catch (\FFI\Exception $e) {
                // Not preloaded: load it here, where FFI is not restricted to preloaded code.
                if (ini_get('ffi.enable') === 'preload' && PHP_SAPI !== 'cli') {
                    throw new FreightException(
                        'PHP allows FFI only in preloaded code here (ffi.enable=preload): preload '
                        . 'libfreight and this package, see "ffi.enable" in bindings/php/README.md ('
                        . $e->getMessage() . ')',
                        '',
                        $e
                    );
                }
            }
            $root = dirname(__DIR__, 3);
            $header = getenv('FREIGHT_HEADER') ?: $root . '/include/freight.h';
            $library = getenv('FREIGHT_LIBRARY') ?: self::findLibrary($root);
            $code = @file_get_contents($header);
            if ($code === false) {
                throw new FreightException("cannot read the header $header; set FREIGHT_HEADER");
            }
            try {
                $ffi = FFI::cdef($code, $library);
            } catch (\FFI\Exception $e) {
                throw new FreightException("cannot load libfreight from $library: " . $e->getMessage(), '', $e);
            }
            self::$ffi = self::checked($ffi);
        }
        return self::$ffi;
    }

    /** The library, once it says it speaks this package's ABI (else no call may use it). */
    private static function checked(FFI $ffi): FFI
    {
        $abi = $ffi->freight_abi_version();
        if ($abi !== 1) {
            throw new FreightException("libfreight ABI $abi is not the ABI 1 this package speaks");
        }
        return $ffi;
    }

    /**
     * The events as a JSON list. A keyed array of events is read in order; one event on its
     * own (an array with scalar values, such as 'event_name') is refused rather than read as
     * one event per field.
     *
     * @param array<mixed> $events
     * @return list<mixed>
     */
    public static function events(#[\SensitiveParameter] array $events): array
    {
        if (!array_is_list($events)) {
            foreach ($events as $event) {
                if (!is_array($event) && !is_object($event)) {
                    throw new ValidationException(
                        'invalid_type: events must be a list of events; wrap a single event in [ ]',
                        'FREIGHT_RESULT_INVALID_ARGUMENT',
                        null,
                        [],
                        'invalid_type'
                    );
                }
            }
        }
        return array_values($events);
    }

    private static function findLibrary(string $root): string
    {
        foreach (['release', 'debug'] as $profile) {
            foreach (['libfreight.so', 'libfreight.dylib'] as $name) {
                $path = "$root/target/$profile/$name";
                if (is_file($path)) {
                    return $path;
                }
            }
        }
        throw new FreightException('libfreight not found; build it (cargo build -p freight-ffi) or set FREIGHT_LIBRARY');
    }

    /** The calling thread's last error message. */
    public static function lastError(): string
    {
        $ffi = self::ffi();
        $n = $ffi->freight_last_error_message(null, 0);
        if ($n === 0) {
            return '';
        }
        $buf = $ffi->new('char[' . ($n + 1) . ']');
        $ffi->freight_last_error_message($buf, $n + 1);
        return FFI::string($buf);
    }

    /** Throws the exception for a non-zero status. */
    public static function check(int $result): void
    {
        if ($result === 0) {
            return;
        }
        $name = self::ffi()->freight_result_name($result);
        // The C library names its arguments (options_json); PHP callers gave arrays.
        $message = preg_replace(
            '/\b(call|config|context|destination|destinations|events|options)_json\b/',
            '$1',
            self::lastError() ?: $name
        ) ?? $name;
        switch ($name) {
            case 'FREIGHT_RESULT_NULL_ARGUMENT':
            case 'FREIGHT_RESULT_INVALID_UTF8':
            case 'FREIGHT_RESULT_INVALID_JSON':
            case 'FREIGHT_RESULT_INVALID_ARGUMENT':
            case 'FREIGHT_RESULT_INVALID_VALUE':
                // A value's problem reads "<slug>: <what to fix>"; the others name an argument.
                $type = null;
                if ($name === 'FREIGHT_RESULT_INVALID_VALUE'
                    && preg_match('/^([a-z]+(?:_[a-z]+)+): /', $message, $m) === 1) {
                    $type = $m[1];
                }
                throw new ValidationException($message, $name, null, [], $type);
            default:
                throw new FreightException($message, $name);
        }
    }

    /**
     * Calls a function whose last argument is a `char **` out-parameter and returns the
     * string, freeing it in `finally`.
     *
     * @param callable(\FFI\CData): int $call
     */
    public static function callForString(callable $call): string
    {
        $out = self::out();
        return self::take($call(FFI::addr($out)), $out);
    }

    /**
     * A `char *` out-parameter, for a call whose arguments hold a secret: such a call is made
     * in place, not in a closure, whose captured variables a stack trace would show.
     */
    public static function out(): FFI\CData
    {
        return self::ffi()->new('char*');
    }

    /** Checks a call's status and returns the string it wrote to $out, freeing it. */
    public static function take(int $result, FFI\CData $out): string
    {
        try {
            self::check($result);
            return FFI::string($out);
        } finally {
            if (!FFI::isNull($out)) {
                self::ffi()->freight_string_free($out);
            }
        }
    }

    /**
     * The JSON of a value that may hold a token or customer data: the parameter is
     * sensitive, and a failure is reported without chaining json_encode's own exception,
     * whose trace would show the value.
     *
     * @param mixed $value
     */
    public static function json(#[\SensitiveParameter] $value): string
    {
        $json = json_encode(
            $value,
            JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_PRESERVE_ZERO_FRACTION
        );
        if ($json === false) {
            throw new ValidationException(
                'cannot encode as JSON: ' . json_last_error_msg(),
                'FREIGHT_RESULT_INVALID_JSON'
            );
        }
        return $json;
    }

    /** @return array<mixed> */
    public static function decode(string $json): array
    {
        return json_decode($json, true, 512, JSON_THROW_ON_ERROR);
    }
}
