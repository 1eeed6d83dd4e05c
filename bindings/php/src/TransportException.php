<?php

declare(strict_types=1);

namespace Freight;

/** Meta could not be reached: network errors, timeouts, unreadable responses. */
class TransportException extends FreightException
{
}
