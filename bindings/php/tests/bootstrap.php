<?php

declare(strict_types=1);

// Autoloading without composer (Debian's phpunit has its own): PSR-4 for Freight\.
spl_autoload_register(static function (string $class): void {
    foreach (['Freight\\Tests\\' => __DIR__ . '/', 'Freight\\' => dirname(__DIR__) . '/src/'] as $prefix => $dir) {
        if (str_starts_with($class, $prefix)) {
            $file = $dir . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
            if (is_file($file)) {
                require $file;
            }
            return;
        }
    }
});

/**
 * Starts `freight sandbox` once for the whole run (FREIGHT_BIN, else the debug build) and
 * returns its base URL; it is stopped when PHP exits.
 */
function freight_sandbox_url(): string
{
    static $url = null;
    static $proc = null;
    if ($url !== null) {
        return $url;
    }
    $root = dirname(__DIR__, 3);
    $bin = getenv('FREIGHT_BIN') ?: $root . '/target/debug/freight';
    $proc = proc_open([$bin, 'sandbox', '--port', '0'], [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
    if (!is_resource($proc)) {
        throw new RuntimeException("cannot start $bin sandbox");
    }
    $line = fgets($pipes[1]);
    if ($line === false || !str_starts_with($line, 'http://127.0.0.1:')) {
        throw new RuntimeException('the sandbox did not print its address');
    }
    $url = trim($line);
    register_shutdown_function(static function () use (&$proc): void {
        if (is_resource($proc)) {
            proc_terminate($proc, 2);
            proc_close($proc);
        }
    });
    return $url;
}

/** @return list<array<string, mixed>> */
function freight_fixture(string $name): array
{
    $lines = file(dirname(__DIR__, 3) . '/tests/fixtures/' . $name, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES);
    return array_map(static fn (string $l) => json_decode($l, true, 512, JSON_THROW_ON_ERROR), $lines);
}

/** GET a sandbox control endpoint. */
function freight_sandbox_get(string $path): array
{
    $body = file_get_contents(freight_sandbox_url() . $path);
    return json_decode((string) $body, true, 512, JSON_THROW_ON_ERROR);
}

/** POST to a sandbox control endpoint. */
function freight_sandbox_post(string $path, string $body = ''): void
{
    $ctx = stream_context_create(['http' => ['method' => 'POST', 'content' => $body,
        'header' => "Content-Type: application/json\r\n"]]);
    file_get_contents(freight_sandbox_url() . $path, false, $ctx);
}
