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
            // Preloaded by opcache.preload with FFI::load() and FFI_SCOPE "freight" (php-fpm).
            try {
                self::$ffi = FFI::scope('freight');
                return self::$ffi;
            } catch (\FFI\Exception $e) {
                // Not preloaded: load it here.
            }
            $root = dirname(__DIR__, 3);
            $header = getenv('FREIGHT_HEADER') ?: $root . '/include/freight.h';
            $library = getenv('FREIGHT_LIBRARY') ?: self::findLibrary($root);
            $code = @file_get_contents($header);
            if ($code === false) {
                throw new FreightException("cannot read the header $header; set FREIGHT_HEADER");
            }
            try {
                self::$ffi = FFI::cdef($code, $library);
            } catch (\FFI\Exception $e) {
                throw new FreightException("cannot load libfreight from $library: " . $e->getMessage(), '', $e);
            }
            $abi = self::$ffi->freight_abi_version();
            if ($abi !== 1) {
                throw new FreightException("libfreight ABI $abi is not the ABI 1 this package speaks");
            }
        }
        return self::$ffi;
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
        $message = self::lastError() ?: $name;
        switch ($name) {
            case 'FREIGHT_RESULT_NULL_ARGUMENT':
            case 'FREIGHT_RESULT_INVALID_UTF8':
            case 'FREIGHT_RESULT_INVALID_JSON':
            case 'FREIGHT_RESULT_INVALID_ARGUMENT':
            case 'FREIGHT_RESULT_INVALID_VALUE':
                throw new ValidationException($message, $name);
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
        $ffi = self::ffi();
        $out = $ffi->new('char*');
        try {
            self::check($call(FFI::addr($out)));
            return FFI::string($out);
        } finally {
            if (!FFI::isNull($out)) {
                $ffi->freight_string_free($out);
            }
        }
    }

    /** @param mixed $value */
    public static function json($value): string
    {
        try {
            return json_encode(
                $value,
                JSON_THROW_ON_ERROR | JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_PRESERVE_ZERO_FRACTION
            );
        } catch (\JsonException $e) {
            throw new ValidationException('cannot encode as JSON: ' . $e->getMessage(), '', $e);
        }
    }

    /** @return array<mixed> */
    public static function decode(string $json): array
    {
        return json_decode($json, true, 512, JSON_THROW_ON_ERROR);
    }
}
