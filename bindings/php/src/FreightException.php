<?php

declare(strict_types=1);

namespace Freight;

/**
 * The root of Freight's exceptions. Messages never contain an access token, an app secret or
 * a customer's data. `getResult()` is the libfreight status name, e.g.
 * "FREIGHT_RESULT_INVALID_CONFIG".
 */
class FreightException extends \RuntimeException
{
    private string $result;

    public function __construct(string $message, string $result = '', ?\Throwable $previous = null)
    {
        parent::__construct($message, 0, $previous);
        $this->result = $result;
    }

    public function getResult(): string
    {
        return $this->result;
    }
}
