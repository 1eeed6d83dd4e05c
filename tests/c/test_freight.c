/*
 * The C ABI from C: the shared fixtures, sends to the sandbox, bad input, threads, and
 * random input. Built with -std=c99 -Wall -Wextra -Werror -pedantic and run under valgrind
 * by tests/c/run.sh, against the shared and the static library.
 *
 *   test_freight NORMALIZATION_TSV EVENTS_TSV SANDBOX_URL
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "freight.h"

static int passed = 0, failed = 0;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (cond) {                                                        \
            passed++;                                                      \
        } else {                                                           \
            failed++;                                                      \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);           \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, "\n");                                         \
        }                                                                  \
    } while (0)

static const char *last_error(void) {
    static char buf[1024];
    size_t n = freight_last_error_message(NULL, 0);
    size_t m = freight_last_error_message(buf, sizeof buf);
    if (n != m) {
        snprintf(buf, sizeof buf, "(inconsistent lengths)");
    }
    return buf;
}

/* Splits `line` in place at tabs; returns the number of fields. */
static int split_tabs(char *line, char **fields, int max) {
    int n = 0;
    char *p = line;
    while (n < max) {
        fields[n++] = p;
        char *tab = strchr(p, '\t');
        if (!tab) {
            break;
        }
        *tab = '\0';
        p = tab + 1;
    }
    char *nl = strchr(fields[n - 1], '\n');
    if (nl) {
        *nl = '\0';
    }
    return n;
}

static void test_version(void) {
    CHECK(freight_abi_version() == FREIGHT_ABI_VERSION, "ABI version mismatch");
    CHECK(strcmp(freight_version(), FREIGHT_VERSION) == 0, "the header and the library differ");
    CHECK(strcmp(freight_result_name(FREIGHT_RESULT_INVALID_JSON), "FREIGHT_RESULT_INVALID_JSON") == 0,
          "result name");
    CHECK(strcmp(freight_result_name(4242), "FREIGHT_RESULT_UNKNOWN") == 0, "unknown result name");
}

static void test_normalization_fixture(const char *path) {
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f) {
        return;
    }
    char line[4096];
    int cases = 0;
    while (fgets(line, sizeof line, f)) {
        char *c[5];
        if (split_tabs(line, c, 5) != 5) {
            continue;
        }
        cases++;
        const char *field = c[0], *input = c[1], *opts = c[2], *wire = c[3], *error = c[4];
        char *out = NULL;
        freight_result r = freight_normalize(field, strlen(field), input, strlen(input), opts,
                                             strlen(opts), &out);
        if (error[0]) {
            CHECK(r == FREIGHT_RESULT_INVALID_VALUE, "%s %s: expected %s, got %s", field, input,
                  error, freight_result_name(r));
            CHECK(out == NULL, "out written on failure");
            CHECK(strncmp(last_error(), error, strlen(error)) == 0, "%s %s: error %s", field, input,
                  last_error());
            CHECK(strstr(last_error(), input) == NULL || strlen(input) < 3,
                  "the value appears in the error");
        } else {
            CHECK(r == FREIGHT_RESULT_OK, "%s %s: %s", field, input, last_error());
            if (r == FREIGHT_RESULT_OK) {
                char expect[256];
                if (wire[0]) {
                    snprintf(expect, sizeof expect, "\"hash\":\"%s\"", wire);
                } else {
                    snprintf(expect, sizeof expect, "\"hash\":null");
                }
                CHECK(strstr(out, expect) != NULL, "%s %s: %s lacks %s", field, input, out, expect);
                freight_string_free(out);
            }
        }
    }
    fclose(f);
    CHECK(cases >= 70, "only %d normalization cases", cases);
}

static void test_events_fixture(const char *path) {
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f) {
        return;
    }
    static char line[65536];
    int cases = 0;
    while (fgets(line, sizeof line, f)) {
        char *c[6];
        if (split_tabs(line, c, 6) != 6) {
            continue;
        }
        cases++;
        const char *name = c[0], *events = c[2], *opts = c[3], *errors = c[5];
        long long now = atoll(c[1]);
        int accepted = c[4][0] == '1';
        char *out = NULL;
        freight_result r =
            freight_prepare(events, strlen(events), opts, strlen(opts), (int64_t)now, &out);
        CHECK(r == FREIGHT_RESULT_OK, "%s: %s", name, last_error());
        if (r != FREIGHT_RESULT_OK) {
            continue;
        }
        if (accepted) {
            CHECK(strstr(out, "\"rejected\":[]") != NULL, "%s: rejected: %s", name, out);
        } else {
            CHECK(strstr(out, "\"events\":[]") != NULL, "%s: not rejected", name);
            char copy[1024];
            snprintf(copy, sizeof copy, "%s", errors);
            for (char *t = strtok(copy, ","); t; t = strtok(NULL, ",")) {
                char expect[128];
                snprintf(expect, sizeof expect, "\"type\":\"%s\"", t);
                CHECK(strstr(out, expect) != NULL, "%s: lacks %s", name, t);
            }
        }
        freight_string_free(out);
    }
    fclose(f);
    CHECK(cases >= 50, "only %d event cases", cases);
}

static void test_segment_fixture(const char *path) {
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f) {
        return;
    }
    static char line[16384];
    int cases = 0;
    while (fgets(line, sizeof line, f)) {
        char *c[5];
        if (split_tabs(line, c, 5) != 5) {
            continue;
        }
        cases++;
        const char *name = c[0], *call = c[1], *opts = c[2], *event_name = c[3], *errors = c[4];
        char *out = NULL;
        freight_result r = freight_segment(call, strlen(call), opts, strlen(opts), &out);
        CHECK(r == FREIGHT_RESULT_OK, "%s: %s", name, last_error());
        if (r != FREIGHT_RESULT_OK) {
            continue;
        }
        if (event_name[0]) {
            char expect[256];
            snprintf(expect, sizeof expect, "\"event_name\":\"%s\"", event_name);
            CHECK(strstr(out, expect) != NULL, "%s: %s lacks %s", name, out, expect);
        } else {
            char copy[512];
            snprintf(copy, sizeof copy, "%s", errors);
            for (char *t = strtok(copy, ","); t; t = strtok(NULL, ",")) {
                char expect[128];
                snprintf(expect, sizeof expect, "\"type\":\"%s\"", t);
                CHECK(strstr(out, expect) != NULL, "%s: lacks %s", name, t);
            }
        }
        freight_string_free(out);
    }
    fclose(f);
    CHECK(cases >= 40, "only %d segment cases", cases);
}

static void test_click_ids_fixture(const char *path) {
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f) {
        return;
    }
    static char line[8192];
    int cases = 0;
    while (fgets(line, sizeof line, f)) {
        char *c[3];
        if (split_tabs(line, c, 3) != 3) {
            continue;
        }
        cases++;
        char *out = NULL;
        freight_result r = freight_click_ids(c[0], strlen(c[0]), &out);
        CHECK(r == FREIGHT_RESULT_OK, "click_ids: %s", last_error());
        if (r != FREIGHT_RESULT_OK) {
            continue;
        }
        char expect[512];
        if (c[1][0]) {
            snprintf(expect, sizeof expect, "\"fbc\":\"%s\"", c[1]);
        } else {
            snprintf(expect, sizeof expect, "\"fbc\":null");
        }
        CHECK(strstr(out, expect) != NULL, "%s lacks %s", out, expect);
        snprintf(expect, sizeof expect, "\"fbp\":\"%s\"", c[2]);
        CHECK(strstr(out, expect) != NULL, "%s lacks %s", out, expect);
        freight_string_free(out);
    }
    fclose(f);
    CHECK(cases >= 30, "only %d click id cases", cases);
    /* now_ms and random: whole numbers in range, or absent; never cut to fit. */
    const char *bad[] = {
        "{\"host\":\"a.example\",\"random\":4294967296}",
        "{\"host\":\"a.example\",\"random\":-1}",
        "{\"host\":\"a.example\",\"random\":\"7\"}",
        "{\"host\":\"a.example\",\"now_ms\":1.5}",
        "{\"host\":\"a.example\",\"now_ms\":-5}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out = NULL;
        freight_result r = freight_click_ids(bad[i], strlen(bad[i]), &out);
        CHECK(r == FREIGHT_RESULT_INVALID_ARGUMENT && out == NULL, "accepted: %s", bad[i]);
    }
    const char *edge = "{\"host\":\"a.example\",\"now_ms\":5,\"random\":4294967295}";
    char *out = NULL;
    freight_result r = freight_click_ids(edge, strlen(edge), &out);
    CHECK(r == FREIGHT_RESULT_OK && strstr(out, "\"fb.1.5.4294967295\"") != NULL, "edge: %s",
          out ? out : last_error());
    freight_string_free(out);
}

static void test_platform_helpers(void) {
    char *out = NULL;
    freight_result r = freight_partner_agent("shopbuilder", 11, "4.2", 3, "1.0.3", 5, &out);
    CHECK(r == FREIGHT_RESULT_OK && strcmp(out, "plshopbuilder-4.2-1.0.3") == 0, "partner_agent");
    freight_string_free(out);
    r = freight_partner_agent("shop builder", 12, "4", 1, "1", 1, &out);
    CHECK(r == FREIGHT_RESULT_INVALID_ARGUMENT, "bad partner accepted");
    r = freight_partner_agent("DataPartner", 11, "1.0", 3, "", 0, &out);
    CHECK(r == FREIGHT_RESULT_OK && strcmp(out, "pldatapartner-1.0") == 0,
          "partner_agent without app version");
    freight_string_free(out);
    r = freight_partner_agent("DataPartner", 11, "1.0", 3, NULL, 0, &out);
    CHECK(r == FREIGHT_RESULT_OK && strcmp(out, "pldatapartner-1.0") == 0,
          "partner_agent with a NULL app version");
    freight_string_free(out);
    char *a = NULL, *b = NULL, *rnd = NULL;
    r = freight_event_id("s3cret", 6, "1", 1, "Purchase", 8, "order-1", 7, &a);
    CHECK(r == FREIGHT_RESULT_OK, "event_id: %s", last_error());
    r = freight_event_id("s3cret", 6, "1", 1, "Purchase", 8, "order-1", 7, &b);
    CHECK(r == FREIGHT_RESULT_OK && strcmp(a, b) == 0 && strlen(a) == 36, "deterministic id");
    char *none = NULL;
    r = freight_event_id("s3cret", 6, "1", 1, "Purchase", 8, " ", 1, &none);
    CHECK(r == FREIGHT_RESULT_INVALID_ARGUMENT && none == NULL, "blank key accepted");
    r = freight_event_id("s3cret", 6, "1", 1, "Custom|A", 8, "B", 1, &none);
    CHECK(r == FREIGHT_RESULT_INVALID_ARGUMENT && none == NULL, "| in event_name accepted");
    CHECK(strstr(last_error(), "s3cret") == NULL, "the secret in an error");
    r = freight_event_id(NULL, 0, NULL, 0, NULL, 0, NULL, 0, &rnd);
    CHECK(r == FREIGHT_RESULT_OK && rnd[14] == '4', "random id");
    freight_string_free(a);
    freight_string_free(b);
    freight_string_free(rnd);
}

static freight_client *new_client(const char *url) {
    char config[512];
    snprintf(config, sizeof config,
             "{\"graph_url\":\"%s\",\"timeout_ms\":3000,\"partner_agent\":\"plfreight-c-1\"}", url);
    freight_client *client = NULL;
    freight_result r = freight_client_new(config, strlen(config), &client);
    CHECK(r == FREIGHT_RESULT_OK && client != NULL, "client_new: %s", last_error());
    return client;
}

static char *events_json(int n, const char *prefix) {
    size_t cap = (size_t)n * 256 + 16;
    char *buf = malloc(cap);
    size_t len = 0;
    long long now = (long long)time(NULL);
    len += (size_t)snprintf(buf + len, cap - len, "[");
    for (int i = 0; i < n; i++) {
        len += (size_t)snprintf(buf + len, cap - len,
                                "%s{\"event_name\":\"Purchase\",\"event_time\":%lld,"
                                "\"action_source\":\"system_generated\",\"event_id\":\"%s-%d\","
                                "\"user_data\":{\"em\":\"c%d@example.com\"},"
                                "\"custom_data\":{\"value\":%d.5,\"currency\":\"eur\"}}",
                                i ? "," : "", now - 60, prefix, i, i, i);
    }
    snprintf(buf + len, cap - len, "]");
    return buf;
}

static void test_send(const char *url) {
    freight_client *client = new_client(url);
    if (!client) {
        return;
    }
    const char *dest = "{\"pixel_id\":\"1234567890\",\"access_token\":\"sandbox-token\","
                       "\"test_event_code\":\"TEST_C\"}";
    char *events = events_json(3, "c-order");
    char *report = NULL;
    freight_result r =
        freight_client_send(client, dest, strlen(dest), events, strlen(events), &report);
    CHECK(r == FREIGHT_RESULT_OK, "send: %s", last_error());
    if (r == FREIGHT_RESULT_OK) {
        CHECK(strstr(report, "\"delivered\":3") != NULL, "report: %s", report);
        CHECK(strstr(report, "sandbox-token") == NULL, "the token is in the report");
        freight_string_free(report);
    }
    free(events);

    char *status = NULL;
    r = freight_client_test_connection(client, dest, strlen(dest), &status);
    CHECK(r == FREIGHT_RESULT_OK && strstr(status, "\"status\":\"ok\"") != NULL, "test_connection");
    freight_string_free(status);

    const char *wrong = "{\"pixel_id\":\"1234567890\",\"access_token\":\"not-the-token\"}";
    r = freight_client_test_connection(client, wrong, strlen(wrong), &status);
    CHECK(r == FREIGHT_RESULT_OK && strstr(status, "\"status\":\"invalid_token\"") != NULL,
          "invalid token status");
    freight_string_free(status);

    /* Cancelled (as a SIGTERM handler would): nothing is sent until the flag is lifted. */
    freight_client_cancel(client, 1);
    freight_client_cancel(NULL, 1);
    events = events_json(2, "c-cancel");
    r = freight_client_send(client, dest, strlen(dest), events, strlen(events), &report);
    CHECK(r == FREIGHT_RESULT_OK && strstr(report, "\"kind\":\"cancelled\"") != NULL &&
              strstr(report, "\"delivered\":0") != NULL,
          "cancelled send: %s", r == FREIGHT_RESULT_OK ? report : last_error());
    if (r == FREIGHT_RESULT_OK) {
        freight_string_free(report);
    }
    freight_client_cancel(client, 0);
    r = freight_client_send(client, dest, strlen(dest), events, strlen(events), &report);
    CHECK(r == FREIGHT_RESULT_OK && strstr(report, "\"delivered\":2") != NULL,
          "send after the cancel is lifted: %s", r == FREIGHT_RESULT_OK ? report : last_error());
    if (r == FREIGHT_RESULT_OK) {
        freight_string_free(report);
    }
    free(events);
    freight_client_free(client);
}

static void test_bad_input(const char *url) {
    char *out = (char *)0x1;
    /* NULL pointers. */
    freight_result r = freight_normalize(NULL, 0, "x", 1, NULL, 0, &out);
    CHECK(r == FREIGHT_RESULT_NULL_ARGUMENT, "NULL field: %s", freight_result_name(r));
    CHECK(out == (char *)0x1, "out touched on failure");
    CHECK(strlen(last_error()) > 0, "no message for NULL");
    r = freight_normalize("em", 2, "a@b.co", 6, NULL, 0, NULL);
    CHECK(r == FREIGHT_RESULT_NULL_ARGUMENT, "NULL out");
    r = freight_client_send(NULL, "{}", 2, "[]", 2, &out);
    CHECK(r == FREIGHT_RESULT_NULL_ARGUMENT, "NULL client");
    /* Invalid UTF-8. */
    const char bad[] = {'a', (char)0xff, 'b'};
    r = freight_normalize("fn", 2, bad, sizeof bad, NULL, 0, &out);
    CHECK(r == FREIGHT_RESULT_INVALID_UTF8, "invalid UTF-8: %s", freight_result_name(r));
    CHECK(strstr(last_error(), "UTF-8") != NULL, "message: %s", last_error());
    /* Malformed JSON. */
    r = freight_prepare("[{", 2, NULL, 0, 0, &out);
    CHECK(r == FREIGHT_RESULT_INVALID_JSON, "malformed JSON");
    CHECK(strstr(last_error(), "line 1") != NULL, "message: %s", last_error());
    r = freight_prepare("{}", 2, NULL, 0, 0, &out);
    CHECK(r == FREIGHT_RESULT_INVALID_JSON, "not an array");
    /* Bad configurations and destinations. */
    freight_client *client = NULL;
    const char *public_http = "{\"graph_url\":\"http://example.com\"}";
    r = freight_client_new(public_http, strlen(public_http), &client);
    CHECK(r == FREIGHT_RESULT_INVALID_CONFIG && client == NULL, "plain http to a public host");
    client = new_client(url);
    const char *dest = "{\"pixel_id\":\"abc\",\"access_token\":\"secret-token-x\"}";
    r = freight_client_send(client, dest, strlen(dest), "[]", 2, &out);
    CHECK(r == FREIGHT_RESULT_INVALID_DESTINATION, "bad pixel id");
    CHECK(strstr(last_error(), "secret-token-x") == NULL, "token in message");
    freight_client_free(client);
    freight_client_free(NULL);
    freight_string_free(NULL);
    /* A successful call clears the last error. */
    r = freight_normalize("em", 2, "a@b.co", 6, NULL, 0, &out);
    CHECK(r == FREIGHT_RESULT_OK && freight_last_error_message(NULL, 0) == 0, "error cleared");
    freight_string_free(out);
}

static void test_outbox(const char *url) {
    char path[256];
    snprintf(path, sizeof path, "/tmp/freight-c-outbox-%ld.db", (long)time(NULL));
    remove(path);
    freight_outbox *outbox = NULL;
    freight_result r = freight_outbox_open(path, strlen(path), NULL, 0, &outbox);
    CHECK(r == FREIGHT_RESULT_OK && outbox != NULL, "outbox_open: %s", last_error());
    if (!outbox) {
        return;
    }
    char *events = events_json(5, "outbox-c");
    char *out = NULL;
    r = freight_outbox_enqueue(outbox, "shop", 4, events, strlen(events), &out);
    CHECK(r == FREIGHT_RESULT_OK && strstr(out, "\"stored\":5") != NULL, "enqueue: %s", out ? out : last_error());
    freight_string_free(out);
    r = freight_outbox_enqueue(outbox, "shop", 4, events, strlen(events), &out);
    CHECK(r == FREIGHT_RESULT_OK && strstr(out, "\"duplicates\":5") != NULL, "idempotent enqueue");
    freight_string_free(out);
    /* A second advertiser whose credentials cannot be used holds back only its own events. */
    r = freight_outbox_enqueue(outbox, "other", 5, events, strlen(events), &out);
    CHECK(r == FREIGHT_RESULT_OK, "enqueue other: %s", last_error());
    freight_string_free(out);
    free(events);
    freight_client *client = new_client(url);
    const char *dests = "{\"shop\":{\"pixel_id\":\"777\",\"access_token\":\"sandbox-token\"},"
                        "\"other\":{\"pixel_id\":\"not-a-pixel\",\"access_token\":\"other-secret-token\"}}";
    r = freight_outbox_flush(outbox, client, dests, strlen(dests), &out);
    CHECK(r == FREIGHT_RESULT_OK && strstr(out, "\"delivered\":5") != NULL, "flush: %s", out ? out : last_error());
    CHECK(out && strstr(out, "\"unresolved\":[\"other\"]") != NULL && strstr(out, "\"invalid\":[[\"other\",") != NULL,
          "invalid destination: %s", out ? out : "");
    CHECK(out && strstr(out, "other-secret-token") == NULL, "a token in the report");
    freight_string_free(out);
    r = freight_outbox_stats(outbox, &out);
    CHECK(r == FREIGHT_RESULT_OK && strstr(out, "\"pending\":5") != NULL, "stats: %s", out);
    freight_string_free(out);
    CHECK(freight_outbox_resume(outbox, "shop", 4) == FREIGHT_RESULT_OK, "resume");
    /* The events held back stay inspectable; nothing failed, so nothing is re-queued. */
    r = freight_outbox_list(outbox, "pending", 7, 2, &out);
    CHECK(r == FREIGHT_RESULT_OK && out && strstr(out, "\"dest_key\":\"other\"") != NULL
              && strstr(out, "\"event\":{") != NULL,
          "list: %s", out ? out : last_error());
    CHECK(out && strstr(out, "\"id\":3") == NULL, "list honours its limit: %s", out ? out : "");
    freight_string_free(out);
    out = NULL;
    r = freight_outbox_list(outbox, "lost", 4, 10, &out);
    CHECK(r == FREIGHT_RESULT_INVALID_ARGUMENT && out == NULL, "an unknown state");
    uint64_t requeued = 99;
    r = freight_outbox_requeue(outbox, NULL, 0, 1, &requeued);
    CHECK(r == FREIGHT_RESULT_OK && requeued == 0, "requeue: %s", last_error());
    CHECK(freight_outbox_requeue(outbox, "shop", 4, 0, NULL) == FREIGHT_RESULT_NULL_ARGUMENT,
          "requeue without count_out");
    /* An empty key is a setting left unset, not every destination (that is NULL). */
    requeued = 99;
    r = freight_outbox_requeue(outbox, "", 0, 0, &requeued);
    CHECK(r == FREIGHT_RESULT_INVALID_ARGUMENT && requeued == 99, "requeue of an empty key");
    freight_client_free(client);
    freight_outbox_free(outbox);
    freight_outbox_free(NULL);
    remove(path);
    r = freight_outbox_open("/nonexistent-dir/x.db", 20, NULL, 0, &outbox);
    CHECK(r == FREIGHT_RESULT_STORAGE, "storage error: %s", freight_result_name(r));
}

struct job {
    freight_client *client;
    int thread;
    int delivered;
};

static void *send_worker(void *arg) {
    struct job *job = arg;
    for (int round = 0; round < 3; round++) {
        char dest[128], prefix[32];
        snprintf(dest, sizeof dest,
                 "{\"pixel_id\":\"%d\",\"access_token\":\"sandbox-token\"}", 1000 + job->thread);
        snprintf(prefix, sizeof prefix, "t%d-r%d", job->thread, round);
        char *events = events_json(10, prefix);
        char *report = NULL;
        if (freight_client_send(job->client, dest, strlen(dest), events, strlen(events), &report) ==
            FREIGHT_RESULT_OK) {
            if (strstr(report, "\"delivered\":10")) {
                job->delivered += 10;
            }
            freight_string_free(report);
        }
        free(events);
    }
    return NULL;
}

static void test_threads(const char *url) {
    freight_client *client = new_client(url);
    if (!client) {
        return;
    }
    pthread_t threads[4];
    struct job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i].client = client;
        jobs[i].thread = i;
        jobs[i].delivered = 0;
        pthread_create(&threads[i], NULL, send_worker, &jobs[i]);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        total += jobs[i].delivered;
    }
    CHECK(total == 4 * 3 * 10, "threads delivered %d of 120", total);
    freight_client_free(client);
}

static unsigned long long rng = 88172645463325252ULL;
static unsigned next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng >> 32);
}

static void test_random_input(int rounds) {
    static const char alphabet[] = "{}[]\":,0123456789abcdef@. -+\\\xc3\xa9\xff\ntruefalsenull";
    static const char *fields[] = {"em", "ph", "fn", "db", "country", "zp", "ge", "nope"};
    int crashes = 0;
    for (int i = 0; i < rounds; i++) {
        char buf[96];
        size_t len = next_rand() % sizeof buf;
        for (size_t j = 0; j < len; j++) {
            buf[j] = alphabet[next_rand() % (sizeof alphabet - 1)];
        }
        char *out = NULL;
        const char *field = fields[i % 8];
        freight_result r = freight_normalize(field, strlen(field), buf, len, NULL, 0, &out);
        if (r == FREIGHT_RESULT_PANIC) {
            crashes++;
        }
        freight_string_free(out);
        out = NULL;
        if (i % 2 == 0 && len > 0) {
            buf[0] = '[';
        }
        r = freight_prepare(buf, len, NULL, 0, 0, &out);
        if (r == FREIGHT_RESULT_PANIC) {
            crashes++;
        }
        freight_string_free(out);
    }
    CHECK(crashes == 0, "%d panics on random input", crashes);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr,
                "usage: %s NORMALIZATION_TSV EVENTS_TSV SANDBOX_URL [FUZZ_ROUNDS [SEGMENT_TSV CLICK_IDS_TSV]]\n",
                argv[0]);
        return 2;
    }
    int rounds = argc > 4 ? atoi(argv[4]) : 2000;
    if (argc > 6) {
        test_segment_fixture(argv[5]);
        test_click_ids_fixture(argv[6]);
    }
    test_platform_helpers();
    test_version();
    test_normalization_fixture(argv[1]);
    test_events_fixture(argv[2]);
    test_send(argv[3]);
    test_bad_input(argv[3]);
    test_threads(argv[3]);
    test_outbox(argv[3]);
    test_random_input(rounds);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
