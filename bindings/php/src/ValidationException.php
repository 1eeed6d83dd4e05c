<?php

declare(strict_types=1);

namespace Freight;

/**
 * Bad input: an unusable value, malformed JSON, an unknown field. `getType()` is the stable
 * problem slug when there is one (e.g. "invalid_email").
 */
class ValidationException extends FreightException
{
    /** @var list<array{type: string, loc: string, msg: string}> */
    private array $errors;

    /**
     * @param list<array{type: string, loc: string, msg: string}> $errors every problem, when
     *        the call reports them one by one (segment()); last, so that the parameters of
     *        FreightException keep their places
     */
    public function __construct(string $message, string $result = '', ?\Throwable $previous = null, array $errors = [])
    {
        parent::__construct($message, $result, $previous);
        $this->errors = $errors;
    }

    /** The type of the (first) problem, e.g. "invalid_type"; null when the message has none. */
    public function getType(): ?string
    {
        if (preg_match('/^([a-z_]+): /', $this->getMessage(), $m) === 1) {
            return $m[1];
        }
        return null;
    }

    /**
     * Every problem as ['type' => …, 'loc' => …, 'msg' => …], as Python's
     * ValidationError.errors(); empty when only the message is known.
     *
     * @return list<array{type: string, loc: string, msg: string}>
     */
    public function errors(): array
    {
        return $this->errors;
    }
}
