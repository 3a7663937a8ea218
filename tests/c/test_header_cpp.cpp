// test_header_cpp: beckon.h from C++17.
//
// - The header is included twice (include guard) and compiles with
//   -Wall -Wextra -Werror (scripts/c-tests.sh also compiles it alone with
//   -pedantic, as C11 and as C++17).
// - The API is used from C++: callbacks are plain functions with C linkage (no
//   lambdas), user_data points to a C++ object, and a small RAII wrapper local
//   to this test owns each client.
// - A short flow: alice invites bob, bob accepts from his event handler, alice
//   sees INVITATION_ACCEPTED; then the wrappers free the clients.
#include "beckon.h"
#include "beckon.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

int failures = 0;
int checks = 0;

#define EXPECT(cond)                                                                      \
    do {                                                                                  \
        ++checks;                                                                         \
        if (!(cond)) {                                                                    \
            ++failures;                                                                   \
            std::fprintf(stderr, "FAIL %s:%d: expected %s (last error: %s)\n", __FILE__, \
                         __LINE__, #cond, beckon_last_error_message());                  \
        }                                                                                 \
    } while (0)

#define REQUIRE_OK(expr)                                                                  \
    do {                                                                                  \
        ++checks;                                                                         \
        beckon_error rc_ = (expr);                                                        \
        if (rc_ != BECKON_OK) {                                                           \
            std::fprintf(stderr, "FAIL %s:%d: %s returned %s: %s\n", __FILE__, __LINE__,  \
                         #expr, beckon_error_name(rc_), beckon_last_error_message());     \
            std::exit(1);                                                                 \
        }                                                                                 \
    } while (0)

const auto kTimeout = std::chrono::seconds(std::getenv("BECKON_TEST_SLOW") ? 100 : 10);

// What one client saw: events and callback results, waitable.
class Inbox {
public:
    explicit Inbox(std::string name) : name_(std::move(name)) {}

    void add(std::string line) {
        std::lock_guard<std::mutex> lock(mutex_);
        lines_.push_back(std::move(line));
        changed_.notify_all();
    }

    // Waits (bounded) until a line starting with `prefix` is there.
    bool wait_for(const std::string &prefix) {
        std::unique_lock<std::mutex> lock(mutex_);
        return changed_.wait_for(lock, kTimeout, [&] { return find_locked(prefix) != nullptr; });
    }

    std::string get(const std::string &prefix) {
        std::lock_guard<std::mutex> lock(mutex_);
        const std::string *line = find_locked(prefix);
        return line ? *line : std::string();
    }

    const std::string &name() const { return name_; }

    beckon_client *client = nullptr;
    bool accept_invitations = false;
    std::atomic<int> answers_sent{0};

private:
    const std::string *find_locked(const std::string &prefix) const {
        for (const auto &line : lines_)
            if (line.compare(0, prefix.size(), prefix) == 0) return &line;
        return nullptr;
    }

    std::string name_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<std::string> lines_;
};

}  // namespace

// Callbacks: plain functions with C linkage, user_data is an Inbox.
extern "C" {

static void on_result(void *user_data, const beckon_result *result) {
    auto *inbox = static_cast<Inbox *>(user_data);
    inbox->add(std::string("result ") + beckon_error_name(result->error));
}

static void on_accept_result(void *user_data, const beckon_result *result) {
    auto *inbox = static_cast<Inbox *>(user_data);
    inbox->add(std::string("accept result ") + beckon_error_name(result->error));
}

static void on_sent(void *user_data, const beckon_send_result *result) {
    auto *inbox = static_cast<Inbox *>(user_data);
    inbox->add(std::string("sent ") + beckon_error_name(result->error) + " " + result->invitation_id);
}

static void on_event(void *user_data, const beckon_event *event) {
    auto *inbox = static_cast<Inbox *>(user_data);
    std::string line = std::string("event ") + beckon_event_kind_name(event->kind) + " " + event->invitation_id +
                       " " + event->user_id + " " + event->extended_data;
    inbox->add(line);
    if (event->kind == BECKON_EVENT_INVITATION_RECEIVED && inbox->accept_invitations) {
        inbox->answers_sent++;
        beckon_error rc =
            beckon_accept_invitation(inbox->client, event->invitation_id, "from C++", on_accept_result, inbox);
        if (rc != BECKON_OK) inbox->add(std::string("accept refused ") + beckon_error_name(rc));
    }
}

}  // extern "C"

namespace {

// RAII over beckon_client: frees on scope exit; move-only.
class Client {
public:
    Client(const char *url, Inbox &inbox) : inbox_(&inbox) {
        beckon_client_config config;
        std::memset(&config, 0, sizeof config);
        config.struct_size = sizeof config;
        config.server_url = url;
        config.dispatch_mode = BECKON_DISPATCH_THREAD;
        REQUIRE_OK(beckon_client_new(&config, &client_));
        inbox.client = client_;
        REQUIRE_OK(beckon_client_set_event_handler(client_, on_event, &inbox));
    }
    ~Client() { beckon_client_free(client_); }  // accepts NULL (moved-from)
    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;
    Client(Client &&other) noexcept : client_(std::exchange(other.client_, nullptr)), inbox_(other.inbox_) {}

    void login(const char *user) {
        REQUIRE_OK(beckon_client_login(client_, user, nullptr, on_result, inbox_));
        EXPECT(inbox_->wait_for("result OK"));
    }

    beckon_client *get() const { return client_; }

private:
    beckon_client *client_ = nullptr;
    Inbox *inbox_;
};

}  // namespace

int main() {
    std::printf("test_header_cpp: beckon %s (ABI %u), C++%ld\n", beckon_version(), beckon_abi_version(),
                static_cast<long>(__cplusplus));

    // The header's types and macros as C++ sees them.
    static_assert(std::is_same<beckon_error, int32_t>::value, "beckon_error is int32_t");
    static_assert(std::is_standard_layout<beckon_event>::value, "beckon_event is a C struct");
    static_assert(std::is_trivially_copyable<beckon_invitation_config>::value, "config is POD");
    static_assert(BECKON_ERROR_INTERNAL == 16, "error numbering");
    static_assert(BECKON_INVITEE_TIMEOUT == 6, "state numbering");
    static_assert(BECKON_TOKEN_MAX_LEN == 96, "token length");
    EXPECT(std::strcmp(beckon_version(), BECKON_VERSION) == 0);
    EXPECT(beckon_abi_version() == BECKON_ABI_VERSION);
    EXPECT(std::string(beckon_error_name(BECKON_ERROR_NOT_PERMITTED)) == "NOT_PERMITTED");
    beckon_test_force_panic(0);  // the test hook is declared with BECKON_TEST_HOOKS

    {
        Inbox scratch("scratch");
        Client moved_from("memory://cpp-hub", scratch);
        Client owner(std::move(moved_from));  // the moved-from wrapper frees NULL: a no-op
        EXPECT(moved_from.get() == nullptr && owner.get() != nullptr);
    }

    Inbox alice_inbox("alice"), bob_inbox("bob");
    bob_inbox.accept_invitations = true;
    {
        Client alice("memory://cpp-hub", alice_inbox);
        Client bob("memory://cpp-hub", bob_inbox);
        alice.login("alice");
        bob.login("bob");

        const char *invitees[] = {"bob"};
        beckon_invitation_config config;
        std::memset(&config, 0, sizeof config);
        config.struct_size = sizeof config;
        config.timeout_seconds = 30;
        config.extended_data = "hello from C++";
        REQUIRE_OK(beckon_send_invitation(alice.get(), invitees, 1, &config, on_sent, &alice_inbox));
        EXPECT(alice_inbox.wait_for("sent OK "));
        std::string id = alice_inbox.get("sent OK ").substr(8);
        EXPECT(id.size() == 32);
        EXPECT(bob_inbox.wait_for("event INVITATION_RECEIVED " + id));
        EXPECT(bob_inbox.get("event INVITATION_RECEIVED " + id).find("hello from C++") != std::string::npos);
        EXPECT(bob_inbox.wait_for("accept result OK"));
        EXPECT(alice_inbox.wait_for("event INVITATION_ACCEPTED " + id + " bob from C++"));
        EXPECT(bob_inbox.answers_sent == 1);
        // errors from C++ too
        EXPECT(beckon_send_invitation(alice.get(), invitees, 0, &config, on_sent, &alice_inbox) ==
               BECKON_ERROR_INVALID_ARGUMENT);
        EXPECT(std::string(beckon_last_error_message()).find("invitees") != std::string::npos);
    }  // both clients freed here; their callbacks are done

    if (failures == 0) {
        std::printf("test_header_cpp: OK, %d checks passed\n", checks);
        return 0;
    }
    std::printf("test_header_cpp: FAILED, %d of %d checks failed\n", failures, checks);
    return 1;
}
