// C++ callers: freight.hpp compiles with strict flags and links with C linkage.
#include "freight.hpp"

#include <cstdio>
#include <cstring>

int main() {
    if (freight_abi_version() != FREIGHT_ABI_VERSION) {
        std::fprintf(stderr, "ABI version mismatch\n");
        return 1;
    }
    const char *field = "em";
    const char *value = " John_Smith@Gmail.com ";
    char *json = nullptr;
    freight_result r = freight_normalize(field, std::strlen(field), value, std::strlen(value),
                                         nullptr, 0, &json);
    const char *want = "\"hash\":\"62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f\"";
    bool ok = r == FREIGHT_RESULT_OK && json != nullptr && std::strstr(json, want) != nullptr;
    freight_string_free(json);
    std::printf("C++: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
