<?php

declare(strict_types=1);

namespace Freight;

/**
 * For the classes that own a native handle in `$handle` (Client, Outbox): a copy would share
 * the handle and free it a second time, so copies and serialization are refused. Share the
 * object itself (it is safe to use from one request to the next).
 *
 * @internal
 */
trait OwnsNativeHandle
{
    public function __clone()
    {
        $this->handle = null; // the failed copy must not free the original's handle
        throw new FreightException(static::class . ' cannot be cloned; share the object itself');
    }

    /** @return array<mixed> never: it throws */
    public function __serialize(): array
    {
        throw new FreightException(static::class . ' cannot be serialized: it holds a native handle');
    }

    /** @param array<mixed> $data */
    public function __unserialize(array $data): void
    {
        throw new FreightException(static::class . ' cannot be unserialized: it holds a native handle');
    }
}
