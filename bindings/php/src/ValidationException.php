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

    private ?string $type;

    /**
     * @param list<array{type: string, loc: string, msg: string}> $errors every problem, when
     *        the call reports them one by one (segment()); last, so that the parameters of
     *        FreightException keep their places
     * @param string|null $type the problem slug, when the message does not start with it
     */
    public function __construct(
        string $message,
        string $result = '',
        ?\Throwable $previous = null,
        array $errors = [],
        ?string $type = null
    ) {
        parent::__construct($message, $result, $previous);
        $this->errors = $errors;
        $this->type = $type ?? ($errors[0]['type'] ?? null);
    }

    /**
     * The type of the (first) problem, e.g. "invalid_email"; null when it has none (a bad
     * argument: the message names it).
     */
    public function getType(): ?string
    {
        return $this->type;
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
