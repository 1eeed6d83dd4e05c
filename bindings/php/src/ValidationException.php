<?php

declare(strict_types=1);

namespace Freight;

/**
 * Bad input: an unusable value, malformed JSON, an unknown field. `getType()` is the stable
 * problem slug when there is one (e.g. "invalid_email").
 */
class ValidationException extends FreightException
{
    public function getType(): ?string
    {
        if (preg_match('/^([a-z_]+): /', $this->getMessage(), $m) === 1) {
            return $m[1];
        }
        return null;
    }
}
