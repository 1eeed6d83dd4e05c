<?php

declare(strict_types=1);

namespace Freight\Tests;

use Freight\Freight;
use Freight\ValidationException;
use PHPUnit\Framework\TestCase;

final class FreightTest extends TestCase
{
    public function testVersion(): void
    {
        $this->assertMatchesRegularExpression('/^\d+\.\d+\.\d+/', Freight::version());
    }

    public function testSharedNormalizationFixture(): void
    {
        $cases = freight_fixture('normalization.jsonl');
        $this->assertGreaterThanOrEqual(70, count($cases));
        foreach ($cases as $c) {
            $label = $c['field'] . ' ' . $c['input'];
            $options = $c['options'] ?? [];
            if (isset($c['error'])) {
                try {
                    Freight::normalize($c['field'], $c['input'], $options);
                    $this->fail("$label: expected {$c['error']}");
                } catch (ValidationException $e) {
                    $this->assertSame($c['error'], $e->getType(), $label);
                    $this->assertSame('FREIGHT_RESULT_INVALID_VALUE', $e->getResult());
                }
                continue;
            }
            $r = Freight::normalizeDetailed($c['field'], $c['input'], $options);
            $this->assertSame($c['normalized'], $r['normalized'], $label);
            $this->assertSame($c['wire'], $r['hash'], $label);
            $this->assertSame($c['warning'] ?? ($c['normalized'] === null ? 'empty_value' : null), $r['warning'] ?? null, $label);
        }
    }

    public function testSharedEventsFixture(): void
    {
        $cases = freight_fixture('events.jsonl');
        $this->assertGreaterThanOrEqual(50, count($cases));
        foreach ($cases as $c) {
            $out = Freight::prepare([$c['event']], $c['options'] ?? [], $c['now']);
            $this->assertCount(1, $out['events'] + $out['rejected'], $c['name']);
            $errors = [];
            $warnings = [];
            foreach ($out['rejected'] as $r) {
                foreach ($r['errors'] as $p) {
                    $errors[] = [$p['type'], $p['loc']];
                }
                foreach ($r['warnings'] as $p) {
                    $warnings[] = [$p['type'], $p['loc']];
                }
            }
            foreach ($out['events'] as $e) {
                foreach ($e['warnings'] as $p) {
                    $warnings[] = [$p['type'], $p['loc']];
                }
            }
            sort($errors);
            sort($warnings);
            $wantErrors = $c['errors'];
            $wantWarnings = $c['warnings'];
            sort($wantErrors);
            sort($wantWarnings);
            $this->assertSame($wantErrors, $errors, $c['name']);
            $this->assertSame($wantWarnings, $warnings, $c['name']);
        }
    }

    public function testHashOption(): void
    {
        $this->assertSame(hash('sha256', 'a@b.co'), Freight::normalize('em', ' A@B.co ', [], true));
        $this->assertNull(Freight::normalize('fn', '   '));
        $this->assertSame('442079460958', Freight::normalize('ph', '020 7946 0958', ['default_country' => 'gb']));
    }

    public function testBadInputRaisesValidationException(): void
    {
        foreach ([['zz', 'x', 'FREIGHT_RESULT_INVALID_ARGUMENT'], ['em', "\xff", 'FREIGHT_RESULT_INVALID_UTF8']] as [$f, $v, $code]) {
            try {
                Freight::normalize($f, $v);
                $this->fail('no exception');
            } catch (ValidationException $e) {
                $this->assertSame($code, $e->getResult());
                $this->assertNotSame('', $e->getMessage());
            }
        }
        try {
            Freight::normalize('em', 'private-person-name');
            $this->fail('no exception');
        } catch (ValidationException $e) {
            $this->assertStringNotContainsString('private-person-name', $e->getMessage());
            $this->assertSame('invalid_email', $e->getType());
        }
        // A bad argument has no problem type: the message names the argument.
        try {
            Freight::normalize('ph', '020 7946 0958', ['default_contry' => 'gb']);
            $this->fail('no exception');
        } catch (ValidationException $e) {
            $this->assertNull($e->getType(), $e->getMessage());
            $this->assertStringContainsString('default_contry', $e->getMessage());
            // Named as PHP callers know it, not as the C argument (options_json).
            $this->assertStringStartsWith('options: ', $e->getMessage());
        }
        try {
            Freight::normalize('client_ip_address', '203.0.113.7');
            $this->fail('no exception');
        } catch (ValidationException $e) {
            $this->assertStringContainsString('sent as given', $e->getMessage());
        }
    }
}
