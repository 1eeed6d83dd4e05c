<?php

declare(strict_types=1);

namespace Freight;

/**
 * Meta answered with an error. The Graph `code`, `error_subcode`, `fbtrace_id` and Freight's
 * classification (`kind`: transient, throttled, invalid_token, no_permission,
 * pixel_not_found, config, payload, count_mismatch) are kept; decide on those, never on the
 * (localized) message.
 */
class ApiException extends FreightException
{
    /** @param array<string, mixed> $error the report's error object */
    public function __construct(private array $error)
    {
        parent::__construct(sprintf(
            '%s (HTTP %s, code %s%s)%s',
            $error['kind'] ?? 'error',
            $error['http_status'] ?? '-',
            $error['code'] ?? '-',
            isset($error['subcode']) ? '/' . $error['subcode'] : '',
            isset($error['message']) ? ': ' . $error['message'] : ''
        ));
    }

    public function getKind(): string
    {
        return (string) ($this->error['kind'] ?? '');
    }

    public function getGraphCode(): ?int
    {
        return $this->error['code'] ?? null;
    }

    public function getSubcode(): ?int
    {
        return $this->error['subcode'] ?? null;
    }

    public function getFbtraceId(): ?string
    {
        return $this->error['fbtrace_id'] ?? null;
    }

    /** @return array<string, mixed> */
    public function getError(): array
    {
        return $this->error;
    }
}
