// test_hpp: the C++ wrapper (include/beckon.hpp) against the real libbeckon.
//
//  1. versions, ABI check, names, the wrapper's types (move-only client, ...);
//  2. errors returned at once: thrown as beckon::Error with the code and the
//     library's message; input the wrapper refuses before any C call (NUL
//     bytes, durations that do not fit) with its own message;
//  3. the invitation flow in both styles: futures and callbacks, events as
//     values (invitees, notification, extended data), answers sent from the
//     event handler, every callback counted exactly once;
//  4. errors delivered later (futures throw, callbacks get a failed Result);
//  5. cancel of a subset (terminal invitees in error_invitees), of all, refuse,
//     online_only;
//  6. poll mode: Client::wait polls, callbacks run on the polling thread;
//  7. destruction: pending operations complete with SHUTDOWN (futures too),
//     a client destroyed from inside its own event handler;
//  8. exceptions escaping callbacks go to the exception handler, and the
//     client goes on; 9. the log handler; 10. tokens and a hub with a secret;
// 11. with BECKON_TEST_HOOKS (scripts/c-tests.sh): caught panics as INTERNAL;
// 12. ABI 2.1's per-operation request timeouts on send, accept, refuse and
//     cancel (both styles), and their range checks;
// 13. the queued log handler: records on the log thread, handlers that call
//     beckon and replace themselves (also while another thread replaces the
//     handler), no call of a handler after its replacement returned;
// 14. WOULD_DEADLOCK: two clients closing each other from their callbacks
//     (close() throws and leaves the client open), and destroying each other
//     (the destructor leaves one open rather than hang).
// 15. ABI 2.2's push targets: bad targets throw at once naming
//     target.<field>, a plain memory hub refuses every provider, and with
//     BECKON_TEST_HOOKS (a hub with a scripted outlet) set and clear succeed
//     and the inviter's invitation_push_result events arrive as values.
// 16. ABI 2.3's history: pages of ended invitations through cursors (each
//     exactly once, newest sent first, final states), roles, time ranges, bad
//     queries thrown at once naming query.<field>, NOT_LOGGED_IN before login,
//     queries in flight when the client closes (OK or SHUTDOWN, once each).
//
// Every wait is bounded (10 s, 100 s with BECKON_TEST_SLOW=1 under valgrind).
// Prints one line per failed check and ends with "test_hpp: OK, N checks
// passed" or "test_hpp: FAILED, ..."; the exit status says which.
#include "beckon.hpp"
#include "beckon.hpp"  // twice: include guard

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;
using beckon::ErrorCode;
using beckon::EventKind;
using beckon::InviteeState;

namespace {

// ---- checks ---------------------------------------------------------------------

std::atomic<int> checks{0};
std::atomic<int> failures{0};
std::mutex print_lock;

void fail_at(const char *file, int line, const std::string &what) {
    failures++;
    std::lock_guard<std::mutex> lock(print_lock);
    std::fprintf(stderr, "FAIL %s:%d: %s\n", file, line, what.c_str());
    std::fflush(stderr);
}

const auto started = std::chrono::steady_clock::now();

void say(const std::string &line) {
    std::lock_guard<std::mutex> lock(print_lock);
    if (line.rfind("\n== ", 0) == 0) {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
        std::printf("  (%lld ms)\n", static_cast<long long>(ms.count()));
    }
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
}

#define EXPECT(cond)                                                 \
    do {                                                             \
        checks++;                                                    \
        if (!(cond)) fail_at(__FILE__, __LINE__, "expected: " #cond); \
    } while (0)

#define EXPECT_EQ(actual, expected)                                                           \
    do {                                                                                      \
        checks++;                                                                             \
        auto a_ = (actual);                                                                   \
        auto e_ = (expected);                                                                 \
        if (!(a_ == e_)) fail_at(__FILE__, __LINE__, #actual " == " #expected " does not hold"); \
    } while (0)

#define REQUIRE(cond)                                                  \
    do {                                                               \
        checks++;                                                      \
        if (!(cond)) {                                                 \
            fail_at(__FILE__, __LINE__, "required: " #cond);           \
            std::fprintf(stderr, "test_hpp: FATAL: giving up\n");      \
            std::_Exit(1);                                             \
        }                                                              \
    } while (0)

std::string code_name(ErrorCode code) { return std::string(beckon::to_string(code)); }

// Runs `body`, which must throw beckon::Error with `code` and a message that
// contains `field`.
void expect_error(const char *file, int line, const char *what, ErrorCode code, const std::string &field,
                  const std::function<void()> &body) {
    checks++;
    try {
        body();
        fail_at(file, line, std::string(what) + ": no exception, expected " + code_name(code));
    } catch (const beckon::Error &e) {
        if (e.code() != code)
            fail_at(file, line, std::string(what) + ": expected " + code_name(code) + ", got " + e.what());
        else if (e.message().find(field) == std::string::npos)
            fail_at(file, line, std::string(what) + ": message \"" + e.message() + "\" does not name \"" + field + "\"");
        else if (std::string(e.what()).rfind(code_name(code) + ": ", 0) != 0)
            fail_at(file, line, std::string(what) + ": what() \"" + e.what() + "\" does not start with the name");
        else
            say("  ok  " + code_name(code) + " <- " + what + "  [\"" + e.message() + "\"]");
    } catch (const std::exception &e) {
        fail_at(file, line, std::string(what) + ": threw another exception: " + e.what());
    }
}

#define EXPECT_ERROR(code, field, ...) expect_error(__FILE__, __LINE__, #__VA_ARGS__, code, field, [&] { __VA_ARGS__; })

bool slow() {
    const char *v = std::getenv("BECKON_TEST_SLOW");
    return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
}

std::chrono::milliseconds timeout() { return slow() ? 100s : 10s; }

// A future's value within the timeout, or a failed check and the process ends.
template <class T>
T get(std::future<T> future, const char *what) {
    if (future.wait_for(timeout()) != std::future_status::ready) {
        fail_at(__FILE__, __LINE__, std::string("timed out waiting for ") + what);
        std::_Exit(1);
    }
    return future.get();
}

// The error a future ends with (ErrorCode::ok if it succeeded).
template <class T>
beckon::Error error_of(std::future<T> future, const char *what) {
    try {
        get(std::move(future), what);
        return beckon::Error(ErrorCode::ok, "");
    } catch (const beckon::Error &e) {
        return e;
    }
}

std::string hub(const char *name) { return "memory://hpp-" + std::string(name) + "-" + std::to_string(getpid()); }

// ---- what a client saw ------------------------------------------------------------

// Copies of a client's events, waitable; checks that no two callbacks of the
// client overlap and (thread mode) that none runs on the main thread.
class Recorder {
public:
    explicit Recorder(std::thread::id main_thread, bool poll_mode = false)
        : main_(main_thread), poll_mode_(poll_mode) {}

    beckon::EventHandler handler() {
        return [this](const beckon::Event &e) { record(e); };
    }

    void record(const beckon::Event &e) {
        enter();
        std::function<void(const beckon::Event &)> hook;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            events_.push_back(e);
            hook = hook_;
        }
        changed_.notify_all();
        if (hook) hook(e);
        leave();
    }

    // Runs on the dispatcher after each event is recorded.
    void set_hook(std::function<void(const beckon::Event &)> hook) {
        std::lock_guard<std::mutex> lock(mutex_);
        hook_ = std::move(hook);
    }

    // Waits (bounded) for an event that satisfies `pred`; returns a copy.
    std::optional<beckon::Event> wait_for(const std::function<bool(const beckon::Event &)> &pred) {
        std::unique_lock<std::mutex> lock(mutex_);
        std::optional<beckon::Event> found;
        changed_.wait_for(lock, timeout(), [&] {
            for (const auto &e : events_)
                if (pred(e)) {
                    found = e;
                    return true;
                }
            return false;
        });
        return found;
    }

    std::optional<beckon::Event> wait_kind(EventKind kind, const std::string &invitation_id) {
        return wait_for([&](const beckon::Event &e) { return e.kind == kind && e.invitation_id == invitation_id; });
    }

    int count(EventKind kind, const std::string &invitation_id) {
        std::lock_guard<std::mutex> lock(mutex_);
        int n = 0;
        for (const auto &e : events_)
            if (e.kind == kind && e.invitation_id == invitation_id) n++;
        return n;
    }

    // For callbacks of the same client: the same serial and thread checks.
    void enter() {
        if (depth_.fetch_add(1) != 0) fail_at(__FILE__, __LINE__, "two callbacks of one client overlapped");
        if (!poll_mode_ && std::this_thread::get_id() == main_)
            fail_at(__FILE__, __LINE__, "a thread-mode callback ran on the main thread");
        if (poll_mode_ && std::this_thread::get_id() != main_)
            fail_at(__FILE__, __LINE__, "a poll-mode callback ran off the polling thread");
    }
    void leave() { depth_.fetch_sub(1); }

private:
    std::thread::id main_;
    bool poll_mode_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<beckon::Event> events_;
    std::function<void(const beckon::Event &)> hook_;
    std::atomic<int> depth_{0};
};

// One callback-style operation: counts its calls, keeps its result.
template <class T>
class Op {
public:
    explicit Op(Recorder *owner = nullptr) : owner_(owner) {}

    beckon::Callback<T> callback() {
        return [this](beckon::Result<T> result) {
            if (owner_) owner_->enter();
            {
                std::lock_guard<std::mutex> lock(mutex_);
                calls_++;
                result_.emplace(std::move(result));
            }
            if (owner_) owner_->leave();
            changed_.notify_all();
        };
    }

    // Waits (bounded) for the first call; the result, or the process ends.
    beckon::Result<T> wait(const char *what) {
        std::unique_lock<std::mutex> lock(mutex_);
        if (!changed_.wait_for(lock, timeout(), [&] { return calls_ > 0; })) {
            fail_at(__FILE__, __LINE__, std::string("timed out waiting for the callback of ") + what);
            std::_Exit(1);
        }
        return *result_;
    }

    int calls() {
        std::lock_guard<std::mutex> lock(mutex_);
        return calls_;
    }

private:
    Recorder *owner_;
    std::mutex mutex_;
    std::condition_variable changed_;
    int calls_ = 0;
    std::optional<beckon::Result<T>> result_;
};

// ---- 1. versions and types ----------------------------------------------------------

void test_versions_and_types() {
    say("\n== 1. versions, ABI, names, types");
    static_assert(!std::is_copy_constructible_v<beckon::Client>, "Client is move-only");
    static_assert(!std::is_copy_assignable_v<beckon::Client>, "Client is move-only");
    static_assert(std::is_nothrow_move_constructible_v<beckon::Client>, "Client moves without throwing");
    static_assert(std::is_nothrow_move_assignable_v<beckon::Client>, "Client moves without throwing");
    static_assert(std::is_base_of_v<std::runtime_error, beckon::Error>, "Error is a std::runtime_error");
    static_assert(static_cast<int>(ErrorCode::internal) == 16, "code numbering");
    static_assert(static_cast<int>(ErrorCode::would_deadlock) == 17, "code numbering");
    static_assert(static_cast<std::uint32_t>(beckon::LogDelivery::queued) == 1, "delivery numbering");
    static_assert(static_cast<int>(InviteeState::timeout) == 6, "state numbering");
    static_assert(static_cast<int>(EventKind::invitation_user_state_changed) == 9, "kind numbering");

    EXPECT_EQ(beckon::library_abi_version(), beckon::header_abi_version);
    EXPECT_EQ(beckon::library_version(), beckon::header_version);
    EXPECT(beckon::library_version() == BECKON_VERSION);
    bool threw = false;
    try {
        beckon::check_abi();
    } catch (...) {
        threw = true;
    }
    EXPECT(!threw);
    EXPECT_EQ(beckon::abi_version_text(beckon::header_abi_version), std::string("2.3"));
    EXPECT_EQ(beckon::header_abi_version, (2u << 16) | 3u);
    EXPECT(BECKON_ABI_COMPATIBLE(beckon::library_abi_version()));
    EXPECT(beckon::to_string(ErrorCode::not_permitted) == "NOT_PERMITTED");
    EXPECT(beckon::to_string(static_cast<ErrorCode>(999)) == "UNKNOWN");
    EXPECT(beckon::to_string(ErrorCode::would_deadlock) == "WOULD_DEADLOCK");
    EXPECT(beckon::to_string(static_cast<ErrorCode>(18)) == "UNKNOWN");
    EXPECT(beckon::to_string(InviteeState::accepted) == "ACCEPTED");
    EXPECT(beckon::to_string(EventKind::invitation_received) == "INVITATION_RECEIVED");
    EXPECT(beckon::to_string(beckon::ConnectionState::connected) == "CONNECTED");
    EXPECT(beckon::to_string(beckon::ConnectionReason::kicked_out) == "KICKED_OUT");

    beckon::Error e(ErrorCode::not_permitted, "invitation_id: not the inviter");
    EXPECT(e.code() == ErrorCode::not_permitted);
    EXPECT(e.name() == "NOT_PERMITTED");
    EXPECT(e.message() == "invitation_id: not the inviter");
    EXPECT(std::string(e.what()) == "NOT_PERMITTED: invitation_id: not the inviter");
    beckon::Error bare(ErrorCode::shutdown, "");
    EXPECT(std::string(bare.what()).rfind("SHUTDOWN: ", 0) == 0 && std::strlen(bare.what()) > 10);

    beckon::Result<beckon::SendResult> good(beckon::SendResult{"id", {}});
    EXPECT(good.ok() && static_cast<bool>(good) && good->invitation_id == "id");
    bool logic = false;
    try {
        (void)good.error();
    } catch (const std::logic_error &) {
        logic = true;
    }
    EXPECT(logic);
    beckon::Result<void> bad(beckon::Error(ErrorCode::network, "down"));
    EXPECT(!bad.ok());
    EXPECT(bad.error().code() == ErrorCode::network);
    bool rethrown = false;
    try {
        bad.value();
    } catch (const beckon::Error &x) {
        rethrown = x.code() == ErrorCode::network;
    }
    EXPECT(rethrown);

    // Moves: the moved-to client works, the moved-from one refuses politely.
    beckon::Client first(hub("types"));
    EXPECT(first.is_open() && first.native_handle() != nullptr);
    beckon::Client second(std::move(first));
    EXPECT(!first.is_open() && first.native_handle() == nullptr);  // NOLINT(bugprone-use-after-move)
    EXPECT(second.is_open());
    EXPECT_ERROR(ErrorCode::invalid_argument, "moved from", (void)first.login("x"));
    beckon::Client third(hub("types"));
    third = std::move(second);  // frees third's own client first
    EXPECT(third.is_open() && !second.is_open());
    get(third.login("mover"), "login after moves");
    third.close();
    third.close();  // a second close does nothing
    EXPECT(!third.is_open());
    EXPECT_ERROR(ErrorCode::invalid_argument, "closed", third.on_event(nullptr));
}

// ---- 2. errors returned at once -------------------------------------------------------

void test_immediate_errors() {
    say("\n== 2. errors returned at once, and input refused before the C call");
    EXPECT_ERROR(ErrorCode::invalid_argument, "server_url", beckon::Client c(std::string("")));
    EXPECT_ERROR(ErrorCode::invalid_argument, "device_id",
                 beckon::Client c(beckon::ClientOptions{hub("errors"), "bad id!", {}, {}}));
    EXPECT_ERROR(ErrorCode::invalid_argument, "dispatch_mode",
                 beckon::Client c(beckon::ClientOptions{hub("errors"), "", static_cast<beckon::DispatchMode>(7), {}}));
    EXPECT_ERROR(ErrorCode::invalid_argument, "request_timeout_ms",
                 beckon::Client c(beckon::ClientOptions{hub("errors"), "", {}, std::chrono::milliseconds(-1)}));
    EXPECT_ERROR(ErrorCode::invalid_argument, "NUL",
                 beckon::Client c(beckon::ClientOptions{std::string("memory://a\0b", 12), "", {}, {}}));

    beckon::Client client(hub("errors"));
    // Not logged in yet.
    EXPECT_ERROR(ErrorCode::not_logged_in, "",
                 (void)client.send_invitation({"bob"}, beckon::InvitationOptions{30s}));
    EXPECT_ERROR(ErrorCode::invalid_argument, "user_id", (void)client.login("bad id!"));
    EXPECT_ERROR(ErrorCode::invalid_argument, "user_id: contains a NUL byte (at byte 1)",
                 (void)client.login(std::string("a\0b", 3)));
    get(client.login("errors-alice"), "login");

    beckon::InvitationOptions ok{30s};
    EXPECT_ERROR(ErrorCode::invalid_argument, "invitees: the list is empty", (void)client.send_invitation({}, ok));
    EXPECT_ERROR(ErrorCode::invalid_argument, "invitees[1]", (void)client.send_invitation({"bob", "b c"}, ok));
    EXPECT_ERROR(ErrorCode::invalid_argument, "invitees[2]: contains a NUL byte",
                 (void)client.send_invitation({"bob", "carol", std::string("x\0", 2)}, ok));
    EXPECT_ERROR(ErrorCode::invalid_argument, "timeout",
                 (void)client.send_invitation({"bob"}, beckon::InvitationOptions{0s, "", {}, false}));
    EXPECT_ERROR(ErrorCode::invalid_argument, "config.timeout_seconds: -5 is out of range",
                 (void)client.send_invitation({"bob"}, beckon::InvitationOptions{-5s, "", {}, false}));
    // 2^32 + 30 would wrap to a valid 30 s in a careless cast.
    EXPECT_ERROR(ErrorCode::invalid_argument, "config.timeout_seconds: 4294967326 is out of range",
                 (void)client.send_invitation({"bob"}, beckon::InvitationOptions{std::chrono::seconds(4294967326LL),
                                                                                 "", {}, false}));
    std::vector<std::string> crowd;
    for (int i = 0; i < 33; i++) crowd.push_back("user" + std::to_string(i));
    EXPECT_ERROR(ErrorCode::too_many_invitees, "", (void)client.send_invitation(crowd, ok));
    EXPECT_ERROR(ErrorCode::payload_too_large, "extended_data",
                 (void)client.send_invitation({"bob"}, beckon::InvitationOptions{30s, std::string(8193, 'x'), {}, false}));
    beckon::InvitationOptions loud{30s, "", beckon::Notification{std::string(257, 't'), "", "", ""}, false};
    EXPECT_ERROR(ErrorCode::payload_too_large, "title", (void)client.send_invitation({"bob"}, loud));
    beckon::InvitationOptions nul_note{30s, "", beckon::Notification{"", "", "", std::string("p\0", 2)}, false};
    EXPECT_ERROR(ErrorCode::invalid_argument, "config.notification.payload: contains a NUL byte",
                 (void)client.send_invitation({"bob"}, nul_note));
    EXPECT_ERROR(ErrorCode::invalid_argument, "extended_data: contains a NUL byte",
                 (void)client.accept_invitation("0123456789abcdef0123456789abcdef", std::string("\0", 1)));
    EXPECT_ERROR(ErrorCode::invalid_argument, "invitation_id", (void)client.accept_invitation("not an id"));
    EXPECT_ERROR(ErrorCode::invalid_argument, "poll", client.poll(0ms));  // thread mode
    EXPECT_ERROR(ErrorCode::invalid_argument, "timeout_ms: 4294967296 is out of range",
                 client.poll(std::chrono::milliseconds(4294967296LL)));

    // A refused call never runs its callback.
    Op<void> never;
    Op<beckon::SendResult> never_sent;
    EXPECT_ERROR(ErrorCode::invalid_argument, "user_id", client.login("bad id!", "", never.callback()));
    EXPECT_ERROR(ErrorCode::invalid_argument, "invitees", client.send_invitation({}, ok, never_sent.callback()));

    // Hubs and tokens.
    beckon::create_memory_hub("hpp-made-" + std::to_string(getpid()));
    EXPECT_ERROR(ErrorCode::invalid_argument, "", beckon::create_memory_hub("hpp-made-" + std::to_string(getpid())));
    EXPECT_ERROR(ErrorCode::invalid_argument, "max_invitees",
                 beckon::create_memory_hub("hpp-bad-" + std::to_string(getpid()), beckon::HubOptions{"", 5000, 0ms}));
    EXPECT_ERROR(ErrorCode::invalid_argument, "retention_ms",
                 beckon::create_memory_hub("hpp-bad2-" + std::to_string(getpid()), beckon::HubOptions{"", 0, -1ms}));
    EXPECT_ERROR(ErrorCode::invalid_argument, "user_id", (void)beckon::make_token("s3cret", "bad id!", 4000000000ULL));
    EXPECT_ERROR(ErrorCode::invalid_argument, "before 1970",
                 (void)beckon::make_token("s3cret", "bob", std::chrono::system_clock::time_point(-1h)));
    client.close();
    EXPECT_EQ(never.calls(), 0);
    EXPECT_EQ(never_sent.calls(), 0);
}

// ---- 3. the flow, futures and callbacks ---------------------------------------------------

void test_flow(std::thread::id main_thread) {
    say("\n== 3. the invitation flow: futures, callbacks, events as values");
    const std::string url = hub("flow");
    Recorder alice_rec(main_thread), bob_rec(main_thread), carol_rec(main_thread);
    beckon::Client alice(url), bob(url), carol(beckon::ClientOptions{url, "carol-phone", {}, 5s});
    alice.on_event(alice_rec.handler());
    bob.on_event(bob_rec.handler());
    carol.on_event(carol_rec.handler());

    // Callback style login for alice, futures for the others.
    Op<void> alice_login(&alice_rec);
    alice.login("alice", "", alice_login.callback());
    auto bob_login = bob.login("bob");
    auto carol_login = carol.login("carol");
    EXPECT(alice_login.wait("alice's login").ok());
    get(std::move(bob_login), "bob's login");
    get(std::move(carol_login), "carol's login");
    auto connected = alice_rec.wait_for([](const beckon::Event &e) {
        return e.kind == EventKind::connection_state_changed && e.connection_state == beckon::ConnectionState::connected;
    });
    REQUIRE(connected.has_value());
    EXPECT(connected->connection_reason == beckon::ConnectionReason::login);
    EXPECT(alice.connection_state() == beckon::ConnectionState::connected);
    EXPECT_EQ(alice.user_id(), std::string("alice"));
    EXPECT_EQ(carol.device_id(), std::string("carol-phone"));
    EXPECT(!alice.device_id().empty());

    // bob accepts from his event handler (callback style), carol refuses.
    Op<void> bob_answer(&bob_rec), carol_answer(&carol_rec);
    std::atomic<int> bob_answers{0}, carol_answers{0};
    bob_rec.set_hook([&](const beckon::Event &e) {
        if (e.kind == EventKind::invitation_received && bob_answers++ == 0)
            bob.accept_invitation(e.invitation_id, "on my way", bob_answer.callback());
    });
    carol_rec.set_hook([&](const beckon::Event &e) {
        if (e.kind == EventKind::invitation_received && carol_answers++ == 0)
            carol.refuse_invitation(e.invitation_id, "busy", carol_answer.callback());
    });

    beckon::InvitationOptions options;
    options.timeout = 30s;
    options.extended_data = "{\"call\":\"video\"}";
    options.notification = beckon::Notification{"Incoming call", "alice is calling", "room-7", "{\"p\":1}"};
    Op<beckon::SendResult> sent(&alice_rec);
    alice.send_invitation({"bob", "carol", "dave", "bob"}, options, sent.callback());
    beckon::Result<beckon::SendResult> result = sent.wait("send");
    REQUIRE(result.ok());
    const std::string id = result->invitation_id;
    EXPECT(id.size() == 32);
    REQUIRE(result->error_invitees.size() == 1);
    EXPECT((result->error_invitees[0] == beckon::Invitee{"dave", InviteeState::offline}));

    auto received = bob_rec.wait_kind(EventKind::invitation_received, id);
    REQUIRE(received.has_value());
    EXPECT(received->inviter == "alice");
    EXPECT(received->extended_data == "{\"call\":\"video\"}");
    EXPECT(received->seconds_left > 0s && received->seconds_left <= 30s);
    EXPECT(received->name() == "INVITATION_RECEIVED");
    REQUIRE(received->invitees.size() == 3);  // the duplicate bob folded
    EXPECT(received->invitees[0].user_id == "bob");
    EXPECT(received->invitees[1].user_id == "carol");
    EXPECT((received->invitees[2] == beckon::Invitee{"dave", InviteeState::offline}));
    REQUIRE(received->notification.has_value());
    EXPECT(received->notification->title == "Incoming call");
    EXPECT(received->notification->message == "alice is calling");
    EXPECT(received->notification->resource_id == "room-7");
    EXPECT(received->notification->payload == "{\"p\":1}");

    EXPECT(bob_answer.wait("bob's accept").ok());
    EXPECT(carol_answer.wait("carol's refuse").ok());
    auto accepted = alice_rec.wait_kind(EventKind::invitation_accepted, id);
    REQUIRE(accepted.has_value());
    EXPECT(accepted->user_id == "bob");
    EXPECT(accepted->extended_data == "on my way");
    auto refused = alice_rec.wait_kind(EventKind::invitation_refused, id);
    REQUIRE(refused.has_value());
    EXPECT(refused->user_id == "carol");
    EXPECT(refused->extended_data == "busy");
    auto bob_state = carol_rec.wait_for([&](const beckon::Event &e) {
        return e.kind == EventKind::invitation_user_state_changed && e.invitation_id == id && e.user_id == "bob" &&
               e.state == InviteeState::accepted;
    });
    EXPECT(bob_state.has_value());

    // 4. errors delivered later: a future throws, a callback gets a failed Result.
    say("\n== 4. errors delivered later");
    beckon::Error again = error_of(bob.accept_invitation(id, "twice"), "bob's second accept");
    EXPECT(again.code() == ErrorCode::already_answered);
    EXPECT(!again.message().empty());
    say("  ok  " + std::string(again.what()) + " <- second accept (future)");
    Op<void> intruder(&carol_rec);
    carol.accept_invitation(id, "", intruder.callback());
    beckon::Result<void> r = intruder.wait("carol's accept after her refusal");
    EXPECT(!r.ok() && r.error().code() == ErrorCode::already_answered);
    Op<beckon::CancelResult> not_mine(&bob_rec);
    bob.cancel_invitation(id, {}, "", not_mine.callback());
    auto nm = not_mine.wait("bob's cancel of alice's invitation");
    EXPECT(!nm.ok() && nm.error().code() == ErrorCode::not_permitted);
    say("  ok  " + std::string(nm.error().what()) + " <- cancel by an invitee (callback)");
    EXPECT(error_of(alice.accept_invitation("0123456789abcdef0123456789abcdef"), "unknown id").code() ==
           ErrorCode::invitation_not_found);

    // Exactly once, counted after the clients are gone.
    alice.close();
    bob.close();
    carol.close();
    EXPECT_EQ(alice_login.calls(), 1);
    EXPECT_EQ(sent.calls(), 1);
    EXPECT_EQ(bob_answer.calls(), 1);
    EXPECT_EQ(carol_answer.calls(), 1);
    EXPECT_EQ(intruder.calls(), 1);
    EXPECT_EQ(not_mine.calls(), 1);
    EXPECT_EQ(bob_answers.load(), 1);
    EXPECT_EQ(bob_rec.count(EventKind::invitation_received, id), 1);
    EXPECT_EQ(alice_rec.count(EventKind::invitation_accepted, id), 1);
}

// ---- 5. cancel and refuse -----------------------------------------------------------------

void test_cancel(std::thread::id main_thread) {
    say("\n== 5. cancel of a subset (terminal invitees come back), of all, online_only");
    const std::string url = hub("cancel");
    Recorder bob_rec(main_thread), carol_rec(main_thread);
    beckon::Client alice(url), bob(url), carol(url);
    bob.on_event(bob_rec.handler());
    carol.on_event(carol_rec.handler());
    get(alice.login("alice"), "login");
    get(bob.login("bob"), "login");
    get(carol.login("carol"), "login");

    beckon::SendResult sent = get(alice.send_invitation({"bob", "carol"}, {30s}), "send");
    EXPECT(sent.error_invitees.empty());
    REQUIRE(bob_rec.wait_kind(EventKind::invitation_received, sent.invitation_id).has_value());
    // carol refuses; then alice cancels bob and carol: carol comes back terminal.
    get(carol.refuse_invitation(sent.invitation_id), "refuse");
    beckon::CancelResult cancelled =
        get(alice.cancel_invitation(sent.invitation_id, {"bob", "carol"}, "never mind"), "cancel");
    REQUIRE(cancelled.error_invitees.size() == 1);
    EXPECT((cancelled.error_invitees[0] == beckon::Invitee{"carol", InviteeState::rejected}));
    auto told = bob_rec.wait_kind(EventKind::invitation_cancelled, sent.invitation_id);
    REQUIRE(told.has_value());
    EXPECT(told->inviter == "alice");
    EXPECT(told->extended_data == "never mind");

    // Cancel of all, by future, with no error invitees.
    beckon::SendResult second = get(alice.send_invitation({"bob"}, {30s}), "send");
    REQUIRE(bob_rec.wait_kind(EventKind::invitation_received, second.invitation_id).has_value());
    beckon::CancelResult all = get(alice.cancel_invitation(second.invitation_id), "cancel all");
    EXPECT(all.error_invitees.empty());
    REQUIRE(bob_rec.wait_kind(EventKind::invitation_cancelled, second.invitation_id).has_value());
    EXPECT(error_of(bob.accept_invitation(second.invitation_id), "accept after cancel").code() ==
           ErrorCode::invitation_closed);

    // online_only: the offline invitee is closed at once.
    beckon::InvitationOptions online_only{30s, "", {}, true};
    beckon::SendResult third = get(alice.send_invitation({"bob", "zed"}, online_only), "send online_only");
    REQUIRE(third.error_invitees.size() == 1);
    EXPECT((third.error_invitees[0] == beckon::Invitee{"zed", InviteeState::offline}));
    get(alice.cancel_invitation(third.invitation_id), "cancel");
}

// ---- 6. poll mode -------------------------------------------------------------------------

void test_poll_mode(std::thread::id main_thread) {
    say("\n== 6. poll mode: callbacks on the polling thread, Client::wait polls");
    const std::string url = hub("poll");
    Recorder rec(main_thread, /*poll_mode=*/true);
    std::thread::id ran_on;
    Op<void> login(&rec);
    beckon::Client polled(beckon::ClientOptions{url, "", beckon::DispatchMode::poll, {}});
    polled.on_event(rec.handler());
    polled.login("poller", "", [&](beckon::Result<void> r) {
        ran_on = std::this_thread::get_id();
        login.callback()(std::move(r));
    });
    // Nothing runs until polled.
    EXPECT_EQ(login.calls(), 0);
    auto deadline = std::chrono::steady_clock::now() + timeout();
    while (login.calls() == 0 && std::chrono::steady_clock::now() < deadline) polled.poll(50ms);
    EXPECT_EQ(login.calls(), 1);
    EXPECT(ran_on == main_thread);

    beckon::Client caller(url);
    get(caller.login("caller"), "login");
    beckon::SendResult sent = get(caller.send_invitation({"poller"}, {30s, "hi", {}, false}), "send");
    // Events too arrive only while polling.
    deadline = std::chrono::steady_clock::now() + timeout();
    while (rec.count(EventKind::invitation_received, sent.invitation_id) == 0 &&
           std::chrono::steady_clock::now() < deadline)
        polled.poll(50ms);
    REQUIRE(rec.count(EventKind::invitation_received, sent.invitation_id) == 1);
    // A future of a poll-mode client: Client::wait polls until it is ready.
    std::future<void> accept = polled.accept_invitation(sent.invitation_id, "polled");
    EXPECT(accept.wait_for(0s) != std::future_status::ready);
    EXPECT(polled.wait(accept, timeout()));
    accept.get();
}

// ---- 7. destruction --------------------------------------------------------------------------

void test_destruction(std::thread::id main_thread) {
    say("\n== 7. destruction: SHUTDOWN for pending operations, free from inside a handler");
    const std::string url = hub("destroy");
    std::future<beckon::SendResult> pending;
    Op<void> pending_cb;
    {
        beckon::Client callee(url);
        get(callee.login("callee"), "login");
        // Poll mode, logged in, then never polled again: both operations are
        // still queued when the client goes away.
        beckon::Client idle(beckon::ClientOptions{url, "", beckon::DispatchMode::poll, {}});
        auto login = idle.login("idle");
        REQUIRE(idle.wait(login, timeout()));
        login.get();
        pending = idle.send_invitation({"callee"}, {30s});
        idle.renew_token("any", pending_cb.callback());
        EXPECT(pending.wait_for(0s) != std::future_status::ready);
        EXPECT_EQ(pending_cb.calls(), 0);
    }
    REQUIRE(pending.wait_for(0s) == std::future_status::ready);  // completed inside ~Client
    beckon::Error e = error_of(std::move(pending), "send of a destroyed client");
    EXPECT(e.code() == ErrorCode::shutdown);
    EXPECT_EQ(pending_cb.calls(), 1);
    auto r = pending_cb.wait("renew of a destroyed client");
    EXPECT(!r.ok() && r.error().code() == ErrorCode::shutdown);

    // A client that closes itself from its own event handler.
    Recorder rec(main_thread);
    auto self = std::make_unique<beckon::Client>(url);
    beckon::Client *raw = self.get();
    std::mutex m;
    std::condition_variable cv;
    bool closed = false;
    raw->on_event([&, raw](const beckon::Event &ev) {
        rec.record(ev);
        if (ev.kind == EventKind::invitation_received) {
            raw->close();  // frees the C client and the wrapper's state, nested
            std::lock_guard<std::mutex> lock(m);
            closed = true;
            cv.notify_all();
        }
    });
    get(raw->login("selfish"), "login");
    beckon::Client caller(url);
    get(caller.login("caller2"), "login");
    (void)get(caller.send_invitation({"selfish"}, {30s}), "send");
    {
        std::unique_lock<std::mutex> lock(m);
        EXPECT(cv.wait_for(lock, timeout(), [&] { return closed; }));
    }
    EXPECT(!raw->is_open());
    self.reset();  // the destructor of a closed client does nothing
}

// ---- 8. exceptions from callbacks ----------------------------------------------------------

void test_callback_exceptions() {
    say("\n== 8. exceptions escaping callbacks");
    std::mutex m;
    std::condition_variable cv;
    std::vector<std::string> caught;
    beckon::set_callback_exception_handler([&](std::exception_ptr error) {
        std::string what;
        try {
            std::rethrow_exception(error);
        } catch (const std::exception &e) {
            what = e.what();
        } catch (...) {
            what = "?";
        }
        std::lock_guard<std::mutex> lock(m);
        caught.push_back(what);
        cv.notify_all();
    });
    const std::string url = hub("throw");
    beckon::Client client(url);
    client.on_event([](const beckon::Event &e) {
        if (e.kind == EventKind::connection_state_changed) throw std::runtime_error("from the event handler");
    });
    Op<void> after;
    client.login("thrower", "", [](beckon::Result<void>) { throw std::runtime_error("from a callback"); });
    client.logout(after.callback());  // queued after the throwing ones: still runs
    EXPECT(after.wait("logout after the throwing callback").ok());
    {
        std::unique_lock<std::mutex> lock(m);
        EXPECT(cv.wait_for(lock, timeout(), [&] {
            bool cb = false, ev = false;
            for (const auto &w : caught) {
                cb = cb || w == "from a callback";
                ev = ev || w == "from the event handler";
            }
            return cb && ev;
        }));
    }
    client.close();
    beckon::set_callback_exception_handler(nullptr);
}

// ---- 9. log handler ------------------------------------------------------------------------------

void test_log_handler() {
    say("\n== 9. the log handler");
    struct Tally {
        std::mutex m;
        int lines = 0, bad_tag = 0, over_level = 0;
    };
    auto tally = std::make_shared<Tally>();
    beckon::set_log_handler(
        [tally](beckon::LogLevel level, std::string_view tag, std::string_view, std::string_view message) {
            std::lock_guard<std::mutex> lock(tally->m);
            tally->lines++;
            if (tag != "signaling" || message.empty()) tally->bad_tag++;
            if (level > beckon::LogLevel::debug) tally->over_level++;
        },
        beckon::LogLevel::debug);
    {
        beckon::Client client(hub("log"));
        get(client.login("logger"), "login");
        try {
            (void)client.send_invitation({}, {30s});  // an "api" warning
        } catch (const beckon::Error &) {
        }
    }
    beckon::set_log_handler(nullptr);
    int lines;
    {
        std::lock_guard<std::mutex> lock(tally->m);
        lines = tally->lines;
        EXPECT_EQ(tally->bad_tag, 0);
        EXPECT_EQ(tally->over_level, 0);
    }
    EXPECT(lines > 0);
    say("  log lines received: " + std::to_string(lines));
    {
        beckon::Client quiet(hub("log"));
        get(quiet.login("quiet"), "login");
    }
    std::lock_guard<std::mutex> lock(tally->m);
    EXPECT_EQ(tally->lines, lines);  // removed: nothing more arrives
}

// ---- 10. tokens ---------------------------------------------------------------------------------

void test_tokens() {
    say("\n== 10. tokens and a hub with a secret");
    const std::string name = "hpp-secret-" + std::to_string(getpid());
    beckon::create_memory_hub(name, beckon::HubOptions{"s3cret", 4, 60000ms});
    const std::string url = "memory://" + name;
    auto in_an_hour = std::chrono::system_clock::now() + 1h;
    std::string token = beckon::make_token("s3cret", "erin", in_an_hour);
    EXPECT(token.rfind("v1.", 0) == 0);
    EXPECT(token.size() < BECKON_TOKEN_MAX_LEN);
    beckon::Client erin(url);
    EXPECT(error_of(erin.login("erin", "v1.1.00"), "bad token").code() == ErrorCode::auth_failed);
    EXPECT(error_of(erin.login("erin", beckon::make_token("other", "erin", in_an_hour)), "wrong secret").code() ==
           ErrorCode::auth_failed);
    EXPECT(error_of(erin.login("erin", beckon::make_token("s3cret", "erin", 1000)), "expired").code() ==
           ErrorCode::token_expired);
    get(erin.login("erin", token), "login with the token");
    get(erin.renew_token(beckon::make_token("s3cret", "erin", in_an_hour + 1h)), "renew");
    // The hub's own invitee limit (4) is judged at the hub.
    std::vector<std::string> five{"a1", "a2", "a3", "a4", "a5"};
    ErrorCode many = ErrorCode::ok;
    try {
        many = error_of(erin.send_invitation(five, {30s}), "five invitees").code();
    } catch (const beckon::Error &at_once) {
        many = at_once.code();
    }
    EXPECT(many == ErrorCode::too_many_invitees);
    get(erin.logout(), "logout");
}

// ---- 11. caught panics (test hooks) ------------------------------------------------------------

void test_panics() {
#if defined(BECKON_TEST_HOOKS)
    say("\n== 11. caught panics (test hooks): INTERNAL at once, and through a future");
    beckon::Client client(hub("panic"));
    beckon_test_force_panic(BECKON_TEST_PANIC_ENTRY);
    EXPECT_ERROR(ErrorCode::internal, "panic", (void)client.login("panicky"));
    beckon_test_force_panic(0);
    get(client.login("panicky"), "login after the panic");
    beckon_test_force_panic(BECKON_TEST_PANIC_TRANSPORT);
    beckon::Error e = error_of(client.send_invitation({"nobody"}, {30s}), "send with a panic");
    beckon_test_force_panic(0);
    EXPECT(e.code() == ErrorCode::internal);
    say("  ok  " + std::string(e.what()) + " <- send with a transport panic (future)");
#else
    say("\n== 11. caught panics: skipped (built without BECKON_TEST_HOOKS)");
#endif
}

// ---- 12. per-operation request timeouts (ABI 2.1) -----------------------------------------

void test_request_timeouts(std::thread::id main_thread) {
    say("\n== 12. per-operation request timeouts on send, accept, refuse and cancel");
    const std::string url = hub("timeouts");
    Recorder alice_rec(main_thread), bob_rec(main_thread), carol_rec(main_thread);
    beckon::Client alice(url), bob(url), carol(url);
    alice.on_event(alice_rec.handler());
    bob.on_event(bob_rec.handler());
    carol.on_event(carol_rec.handler());
    get(alice.login("alice"), "login");
    get(bob.login("bob"), "login");
    get(carol.login("carol"), "login");

    // A memory hub answers at once: each timeout is accepted and never fires.
    beckon::InvitationOptions options{30s, "call", {}, false, 2500ms};
    EXPECT(options.request_timeout == 2500ms);
    beckon::SendResult sent = get(alice.send_invitation({"bob", "carol"}, options), "send with a timeout");
    REQUIRE(bob_rec.wait_kind(EventKind::invitation_received, sent.invitation_id).has_value());
    REQUIRE(carol_rec.wait_kind(EventKind::invitation_received, sent.invitation_id).has_value());
    get(bob.accept_invitation(sent.invitation_id, "yes", 1500ms), "accept with a timeout (future)");
    Op<void> refused(&carol_rec);
    carol.refuse_invitation(sent.invitation_id, "busy", std::chrono::seconds(1), refused.callback());
    EXPECT(refused.wait("refuse with a timeout (callback)").ok());
    auto accepted = alice_rec.wait_kind(EventKind::invitation_accepted, sent.invitation_id);
    REQUIRE(accepted.has_value());
    EXPECT(accepted->extended_data == "yes");
    auto refusal = alice_rec.wait_kind(EventKind::invitation_refused, sent.invitation_id);
    REQUIRE(refusal.has_value());
    EXPECT(refusal->extended_data == "busy");

    beckon::SendResult second = get(alice.send_invitation({"bob", "carol"}, {30s}), "send");
    REQUIRE(bob_rec.wait_kind(EventKind::invitation_received, second.invitation_id).has_value());
    beckon::CancelResult some =
        get(alice.cancel_invitation(second.invitation_id, {"bob"}, "bye", 3000ms), "cancel with a timeout");
    EXPECT(some.error_invitees.empty());
    auto told = bob_rec.wait_kind(EventKind::invitation_cancelled, second.invitation_id);
    REQUIRE(told.has_value());
    EXPECT(told->extended_data == "bye");
    Op<beckon::CancelResult> rest;
    // The largest timeout the C field holds.
    alice.cancel_invitation(second.invitation_id, {}, "", std::chrono::milliseconds(4294967295LL), rest.callback());
    auto all = rest.wait("cancel of the rest (callback)");
    REQUIRE(all.ok());
    // bob was cancelled already: terminal, he comes back with his state.
    REQUIRE(all->error_invitees.size() == 1);
    EXPECT((all->error_invitees[0] == beckon::Invitee{"bob", InviteeState::cancelled}));
    REQUIRE(carol_rec.wait_kind(EventKind::invitation_cancelled, second.invitation_id).has_value());

    // Out of range: refused before any C call, the callback never runs.
    const std::string id = second.invitation_id;
    EXPECT_ERROR(ErrorCode::invalid_argument, "config.request_timeout_ms: -1 is out of range",
                 (void)alice.send_invitation({"bob"}, beckon::InvitationOptions{30s, "", {}, false, -1ms}));
    EXPECT_ERROR(ErrorCode::invalid_argument, "config.request_timeout_ms: 4294967296 is out of range",
                 (void)bob.accept_invitation(id, "", std::chrono::milliseconds(4294967296LL)));
    EXPECT_ERROR(ErrorCode::invalid_argument, "config.request_timeout_ms: -5 is out of range",
                 (void)alice.cancel_invitation(id, {}, "", -5ms));
    Op<void> never;
    EXPECT_ERROR(ErrorCode::invalid_argument, "config.request_timeout_ms",
                 bob.refuse_invitation(id, "", std::chrono::hours(24 * 50), never.callback()));
    // The library names the fields of the new configs.
    EXPECT_ERROR(ErrorCode::invalid_argument, "config.invitees[0]",
                 (void)alice.cancel_invitation(id, {"b b"}, "", 1000ms));
    EXPECT_ERROR(ErrorCode::invalid_argument, "config.extended_data: contains a NUL byte",
                 (void)bob.refuse_invitation(id, std::string("a\0b", 3), 1000ms));
    // An answer with the defaults (timeout 0: the client's) reaches the hub.
    EXPECT(error_of(bob.accept_invitation(id), "accept after cancel").code() == ErrorCode::invitation_closed);
    alice.close();
    bob.close();
    carol.close();
    EXPECT_EQ(never.calls(), 0);
    EXPECT_EQ(refused.calls(), 1);
    EXPECT_EQ(rest.calls(), 1);
}

// ---- 13. the queued log handler -------------------------------------------------------------------

void test_queued_log_handler(std::thread::id main_thread) {
    say("\n== 13. the queued log handler");
    const std::string url = hub("qlog");
    beckon::Client alice(url), bob(url);
    get(alice.login("alice"), "login");
    get(bob.login("bob"), "login");

    EXPECT_ERROR(ErrorCode::invalid_argument, "config.max_level: 9 is not a LogLevel",
                 beckon::set_log_handler([](beckon::LogLevel, std::string_view, std::string_view,
                                            std::string_view) {},
                                         static_cast<beckon::LogLevel>(9), beckon::LogDelivery::queued));
    EXPECT_ERROR(ErrorCode::invalid_argument, "config.delivery: 7 is not a LogDelivery",
                 beckon::set_log_handler(nullptr, beckon::LogLevel::info, static_cast<beckon::LogDelivery>(7)));

    // Records arrive on one library thread, one at a time; the handler may
    // call beckon.
    struct Seen {
        std::mutex m;
        std::condition_variable cv;
        int records = 0, sends = 0, overlaps = 0, on_main = 0, bad = 0;
        std::atomic<int> depth{0};
        std::thread::id thread;
        bool threads_differ = false;
    };
    auto seen = std::make_shared<Seen>();
    beckon::Client *client = &alice;
    beckon::set_log_handler(
        [seen, client, main_thread](beckon::LogLevel level, std::string_view tag, std::string_view sub_tag,
                                    std::string_view message) {
            if (seen->depth.fetch_add(1) != 0) seen->overlaps++;
            // Calls into the library, as a queued handler may.
            bool ok = client->user_id() == "alice" && !beckon::make_token("s", "alice", 4000000000ULL).empty();
            std::lock_guard<std::mutex> lock(seen->m);
            seen->records++;
            if (!ok || tag != "signaling" || level > beckon::LogLevel::info) seen->bad++;
            if (std::this_thread::get_id() == main_thread) seen->on_main++;
            if (seen->records == 1) seen->thread = std::this_thread::get_id();
            else if (seen->thread != std::this_thread::get_id()) seen->threads_differ = true;
            if (sub_tag == "room" && message.rfind("send invitation", 0) == 0) seen->sends++;
            seen->depth.fetch_sub(1);
            seen->cv.notify_all();
        },
        beckon::LogLevel::info, beckon::LogDelivery::queued);
    for (int i = 0; i < 5; i++) (void)get(alice.send_invitation({"bob"}, {30s}), "send");
    {
        std::unique_lock<std::mutex> lock(seen->m);
        EXPECT(seen->cv.wait_for(lock, timeout(), [&] { return seen->sends >= 5; }));
        EXPECT_EQ(seen->bad, 0);
        EXPECT_EQ(seen->on_main, 0);
        EXPECT_EQ(seen->overlaps, 0);
        EXPECT(!seen->threads_differ);
        say("  queued records received: " + std::to_string(seen->records));
    }

    // Twenty replacements while two threads keep the library logging: a
    // handler is never called after the set_log_handler that replaced it
    // returned.
    std::atomic<bool> busy{true};
    std::atomic<int> late{0};
    std::vector<std::thread> load;
    for (int t = 0; t < 2; t++)
        load.emplace_back([&] {
            while (busy) {
                try {
                    (void)alice.send_invitation({"bob"}, {30s}).wait_for(timeout());
                } catch (const beckon::Error &) {
                }
            }
        });
    constexpr int rounds = 20;
    std::vector<std::shared_ptr<std::atomic<bool>>> retired;
    std::vector<std::shared_ptr<std::atomic<int>>> counts;
    for (int i = 0; i < rounds; i++) {
        auto gone = std::make_shared<std::atomic<bool>>(false);
        auto count = std::make_shared<std::atomic<int>>(0);
        beckon::set_log_handler(
            [gone, count, &late](beckon::LogLevel, std::string_view, std::string_view, std::string_view) {
                if (*gone) late++;
                (*count)++;
                std::this_thread::sleep_for(std::chrono::microseconds(200));  // a slow handler
            },
            beckon::LogLevel::trace, beckon::LogDelivery::queued);
        if (!retired.empty()) *retired.back() = true;
        retired.push_back(gone);
        counts.push_back(count);
        std::this_thread::sleep_for(5ms);
    }
    beckon::set_log_handler(nullptr);
    *retired.back() = true;
    busy = false;
    for (auto &t : load) t.join();
    EXPECT_EQ(late.load(), 0);
    int called = 0;
    for (const auto &c : counts) called += *c > 0 ? 1 : 0;
    EXPECT(called >= rounds / 2);
    say("  handlers that saw records: " + std::to_string(called) + " of " + std::to_string(rounds));

    // A handler that replaces itself from inside.
    auto second = std::make_shared<std::atomic<int>>(0);
    auto replaced = std::make_shared<std::atomic<bool>>(false);
    beckon::set_log_handler(
        [second, replaced](beckon::LogLevel, std::string_view, std::string_view, std::string_view) {
            if (replaced->exchange(true)) return;
            beckon::set_log_handler(
                [second](beckon::LogLevel, std::string_view, std::string_view, std::string_view) { (*second)++; },
                beckon::LogLevel::info, beckon::LogDelivery::queued);
        },
        beckon::LogLevel::info, beckon::LogDelivery::queued);
    auto deadline = std::chrono::steady_clock::now() + timeout();
    while (*second == 0 && std::chrono::steady_clock::now() < deadline) {
        (void)get(alice.send_invitation({"bob"}, {30s}), "send");
        std::this_thread::sleep_for(10ms);
    }
    EXPECT(*replaced);
    EXPECT(*second > 0);

    // The handler replaces itself while another thread is replacing it (and
    // waits for this very call to return): applied after that one, no hang.
    struct Race {
        std::mutex m;
        std::condition_variable cv;
        bool inside = false;
        bool deferred = false;
        std::atomic<int> second{0}, third{0};
    };
    auto race = std::make_shared<Race>();
    auto third_handler = [race](beckon::LogLevel, std::string_view, std::string_view, std::string_view) {
        race->third++;
    };
    auto started = std::make_shared<std::atomic<bool>>(false);
    beckon::set_log_handler(
        [race, started, third_handler](beckon::LogLevel, std::string_view, std::string_view, std::string_view) {
            if (started->exchange(true)) return;
            {
                std::lock_guard<std::mutex> lock(race->m);
                race->inside = true;
            }
            race->cv.notify_all();
            // Wait (bounded) until the main thread holds the setter lock.
            auto &setter = beckon::detail::globals().log_setter;
            auto until = std::chrono::steady_clock::now() + timeout();
            while (std::chrono::steady_clock::now() < until) {
                if (!setter.try_lock()) break;
                setter.unlock();
                std::this_thread::sleep_for(1ms);
            }
            race->deferred = true;
            beckon::set_log_handler(third_handler, beckon::LogLevel::info, beckon::LogDelivery::queued);
        },
        beckon::LogLevel::info, beckon::LogDelivery::queued);
    (void)get(alice.send_invitation({"bob"}, {30s}), "send");
    {
        std::unique_lock<std::mutex> lock(race->m);
        REQUIRE(race->cv.wait_for(lock, timeout(), [&] { return race->inside; }));
    }
    auto replacing = std::async(std::launch::async, [race] {
        beckon::set_log_handler(
            [race](beckon::LogLevel, std::string_view, std::string_view, std::string_view) { race->second++; },
            beckon::LogLevel::info, beckon::LogDelivery::queued);
    });
    if (replacing.wait_for(timeout()) != std::future_status::ready) {
        fail_at(__FILE__, __LINE__, "set_log_handler hung while the handler replaced itself");
        std::_Exit(1);
    }
    replacing.get();
    EXPECT(race->deferred);
    // The handler's own request came last: it is the one installed now.
    const int second_before = race->second;
    deadline = std::chrono::steady_clock::now() + timeout();
    while (race->third == 0 && std::chrono::steady_clock::now() < deadline) {
        (void)get(alice.send_invitation({"bob"}, {30s}), "send");
        std::this_thread::sleep_for(10ms);
    }
    EXPECT(race->third > 0);
    EXPECT_EQ(race->second.load(), second_before);

    // Exceptions from a queued handler go to the exception handler.
    std::mutex m;
    std::condition_variable cv;
    int caught = 0;
    beckon::set_callback_exception_handler([&](std::exception_ptr) {
        std::lock_guard<std::mutex> lock(m);
        caught++;
        cv.notify_all();
    });
    beckon::set_log_handler(
        [](beckon::LogLevel, std::string_view, std::string_view, std::string_view) {
            throw std::runtime_error("from the log handler");
        },
        beckon::LogLevel::info, beckon::LogDelivery::queued);
    (void)get(alice.send_invitation({"bob"}, {30s}), "send");
    {
        std::unique_lock<std::mutex> lock(m);
        EXPECT(cv.wait_for(lock, timeout(), [&] { return caught > 0; }));
    }
    beckon::set_log_handler(nullptr);
    beckon::set_callback_exception_handler(nullptr);
}

// ---- 14. WOULD_DEADLOCK ------------------------------------------------------------------------

// Two clients, each of whose event handler closes (or destroys) the other as
// soon as both are inside their handlers: each free waits for the other's
// handler to return, so the library refuses one of them.
void test_would_deadlock() {
    say("\n== 14. WOULD_DEADLOCK: clients closing each other from their callbacks");
    for (bool destroy : {false, true}) {
        const std::string url = hub(destroy ? "mutual-destroy" : "mutual-close");
        beckon::Client inviter(url);
        get(inviter.login("inviter"), "login");
        std::optional<beckon::Client> a, b;
        a.emplace(url);
        b.emplace(url);
        get(a->login("ann"), "login");
        get(b->login("ben"), "login");
        beckon_client *a_handle = a->native_handle();
        beckon_client *b_handle = b->native_handle();

        std::mutex m;
        std::condition_variable cv;
        int arrived = 0, finished = 0;
        std::vector<ErrorCode> outcomes;
        std::vector<std::string> messages;
        std::atomic<int> a_events{0}, b_events{0};
        auto handler = [&](std::optional<beckon::Client> &other, std::atomic<int> &events) {
            return [&](const beckon::Event &e) {
                events++;
                if (e.kind != EventKind::invitation_received) return;
                {
                    std::unique_lock<std::mutex> lock(m);
                    arrived++;
                    cv.notify_all();
                    if (!cv.wait_for(lock, timeout(), [&] { return arrived >= 2; })) return;
                }
                ErrorCode outcome = ErrorCode::ok;
                std::string message;
                if (destroy) {
                    other.reset();  // never throws: on WOULD_DEADLOCK the client is left open
                } else {
                    try {
                        other->close();
                    } catch (const beckon::Error &error) {
                        outcome = error.code();
                        message = error.message();
                    }
                }
                std::lock_guard<std::mutex> lock(m);
                outcomes.push_back(outcome);
                messages.push_back(message);
                finished++;
                cv.notify_all();
            };
        };
        a->on_event(handler(b, a_events));
        b->on_event(handler(a, b_events));
        std::size_t leaked_before;
        {
            auto &g = beckon::detail::globals();
            std::lock_guard<std::mutex> lock(g.leaked_mutex);
            leaked_before = g.leaked.size();
        }
        (void)get(inviter.send_invitation({"ann", "ben"}, {30s}), "send");
        {
            std::unique_lock<std::mutex> lock(m);
            REQUIRE(cv.wait_for(lock, timeout(), [&] { return finished == 2; }));
        }
        if (!destroy) {
            // Exactly one close() was refused; that client is still open.
            const int refused = static_cast<int>(std::count(outcomes.begin(), outcomes.end(),
                                                            ErrorCode::would_deadlock));
            EXPECT_EQ(refused, 1);
            EXPECT_EQ(static_cast<int>(std::count(outcomes.begin(), outcomes.end(), ErrorCode::ok)), 1);
            for (const auto &message : messages)
                if (!message.empty()) {
                    EXPECT(message.find("wait for each other") != std::string::npos);
                    say("  ok  WOULD_DEADLOCK <- close() from the other's callback  [\"" + message + "\"]");
                }
            EXPECT(a->is_open() != b->is_open());
            beckon::Client &survivor = a->is_open() ? *a : *b;
            EXPECT(survivor.native_handle() == (a->is_open() ? a_handle : b_handle));
            EXPECT(!survivor.user_id().empty());  // still usable
            survivor.close();  // outside the callbacks: freed
            EXPECT(!survivor.is_open());
            survivor.close();  // a second close does nothing
        } else {
            // Both objects are gone; one client could not be freed and was
            // left open (kept, with its state), without its event handler.
            EXPECT(!a.has_value() && !b.has_value());
            auto &g = beckon::detail::globals();
            std::pair<beckon_client *, void *> kept{nullptr, nullptr};
            {
                std::lock_guard<std::mutex> lock(g.leaked_mutex);
                EXPECT_EQ(g.leaked.size(), leaked_before + 1);
                if (g.leaked.size() == leaked_before + 1) kept = g.leaked.back();
            }
            EXPECT(kept.first == a_handle || kept.first == b_handle);
            std::atomic<int> &kept_events = kept.first == a_handle ? a_events : b_events;
            const int before = kept_events;
            // The leaked client is live: it still rings, but no handler hears it.
            std::string user = kept.first == a_handle ? "ann" : "ben";
            (void)get(inviter.send_invitation({user}, {30s}), "send to the leaked client");
            std::this_thread::sleep_for(100ms);
            EXPECT_EQ(kept_events.load(), before);
            say("  ok  ~Client on WOULD_DEADLOCK left its client open (see the note above)");
        }
    }
}

}  // namespace

// ---- 15. push targets (ABI 2.2) ------------------------------------------------------------

void test_push(std::thread::id main_thread) {
    (void)main_thread;  // the same signature as the other sections
    say("\n== 15. push targets and push results");
    EXPECT(beckon::to_string(beckon::PushProvider::apns_voip) == "APNS_VOIP");
    EXPECT(beckon::to_string(beckon::PushOutcome::no_target) == "NO_TARGET");
    EXPECT(beckon::to_string(EventKind::invitation_push_result) == "INVITATION_PUSH_RESULT");
    const std::string apns(64, 'a');
    beckon::Client alice(hub("push"));
    EXPECT_ERROR(ErrorCode::not_logged_in, "", (void)alice.set_push_target({beckon::PushProvider::fcm, "t"}));
    get(alice.login("alice"), "login");
    EXPECT_ERROR(ErrorCode::invalid_argument, "target.token", (void)alice.set_push_target({beckon::PushProvider::fcm, ""}));
    EXPECT_ERROR(ErrorCode::invalid_argument, "target.token: contains a NUL byte",
                 (void)alice.set_push_target({beckon::PushProvider::fcm, std::string("a\0b", 3)}));
    EXPECT_ERROR(ErrorCode::payload_too_large, "target.token",
                 (void)alice.set_push_target({beckon::PushProvider::webhook, std::string(4097, 'x')}));
    EXPECT_ERROR(ErrorCode::invalid_argument, "target.topic",
                 (void)alice.set_push_target({beckon::PushProvider::fcm, "t", "com.example"}));
    EXPECT_ERROR(ErrorCode::invalid_argument, "target.environment",
                 (void)alice.set_push_target({beckon::PushProvider::fcm, "t", "", beckon::ApnsEnvironment::sandbox}));
    EXPECT_ERROR(ErrorCode::invalid_argument, "target.provider",
                 (void)alice.set_push_target({static_cast<beckon::PushProvider>(9), "t"}));
    EXPECT_ERROR(ErrorCode::invalid_argument, "target.alert_token",
                 (void)alice.set_push_target({beckon::PushProvider::apns, apns, "", {}, apns}));
    beckon::Error refused = error_of(alice.set_push_target({beckon::PushProvider::apns_voip, apns, "com.example"}),
                                     "set on a hub that pushes nowhere");
    EXPECT(refused.code() == ErrorCode::invalid_argument);
    EXPECT(refused.message().find("does not push through apns_voip") != std::string::npos);
    get(alice.clear_push_target(), "clear what was never set");
    alice.close();

#if defined(BECKON_TEST_HOOKS)
    const std::string name = "hpp-push-outlet-" + std::to_string(getpid());
    beckon::detail::check(beckon_test_memory_hub_create_with_push(name.c_str()));
    beckon_push_target offline{};
    offline.struct_size = sizeof offline;
    offline.provider = BECKON_PUSH_PROVIDER_FCM;
    offline.token = "fail-token";
    beckon::detail::check(beckon_test_offline_push_target(name.c_str(), "bob", "bob-phone", &offline));
    Recorder seen(main_thread);
    beckon::Client inviter(beckon::ClientOptions{"memory://" + name, "alice-phone"});
    inviter.on_event(seen.handler());
    get(inviter.login("alice"), "login");
    Op<void> set(&seen), cleared(&seen);
    inviter.set_push_target({beckon::PushProvider::apns_voip, apns, "com.example", beckon::ApnsEnvironment::sandbox,
                             std::string(64, 'b')},
                            set.callback());
    EXPECT(set.wait("set_push_target").ok());
    inviter.clear_push_target(cleared.callback());
    EXPECT(cleared.wait("clear_push_target").ok());
    EXPECT(set.calls() == 1 && cleared.calls() == 1);
    auto sent = get(inviter.send_invitation({"bob", "erin"}, {30s}), "send");
    auto bob = seen.wait_for([&](const beckon::Event &e) {
        return e.kind == EventKind::invitation_push_result && e.invitation_id == sent.invitation_id && e.user_id == "bob";
    });
    auto erin = seen.wait_for([&](const beckon::Event &e) {
        return e.kind == EventKind::invitation_push_result && e.invitation_id == sent.invitation_id &&
               e.user_id == "erin";
    });
    REQUIRE(bob && erin);
    EXPECT(bob->device_id == "bob-phone");
    EXPECT(bob->push_provider == beckon::PushProvider::fcm);
    EXPECT(bob->push_outcome == beckon::PushOutcome::failed);
    EXPECT(bob->push_reason == "ServiceUnavailable");
    EXPECT(erin->device_id.empty() && !erin->push_provider);
    EXPECT(erin->push_outcome == beckon::PushOutcome::no_target);
    EXPECT(seen.count(EventKind::invitation_push_result, sent.invitation_id) == 2);
#endif
}

// ---- 16. history (ABI 2.3) ------------------------------------------------------------------

std::uint64_t unix_ms() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

void test_history(std::thread::id main_thread) {
    say("\n== 16. history: pages through cursors, roles, time ranges, bad queries");
    static_assert(static_cast<int>(beckon::HistoryRole::any) == 0, "role numbering");
    static_assert(static_cast<int>(beckon::HistoryRole::sent) == 1, "role numbering");
    static_assert(static_cast<int>(beckon::HistoryRole::received) == 2, "role numbering");
    const std::string url = hub("history");
    Recorder alice_rec(main_thread), bob_rec(main_thread);
    beckon::Client alice(url), bob(url);
    alice.on_event(alice_rec.handler());
    bob.on_event(bob_rec.handler());

    // Before login: NOT_LOGGED_IN at once, in both styles, and no callback.
    Op<beckon::InvitationPage> never;
    EXPECT_ERROR(ErrorCode::not_logged_in, "", (void)alice.query_invitations());
    EXPECT_ERROR(ErrorCode::not_logged_in, "", alice.query_invitations({}, never.callback()));
    get(alice.login("alice"), "login");
    get(bob.login("bob"), "login");

    // alice invites bob 7 times; bob refuses each.
    constexpr int rounds = 7;
    const std::uint64_t before = unix_ms();
    std::vector<std::string> ids;
    for (int i = 0; i < rounds; i++) {
        beckon::SendResult sent = get(alice.send_invitation({"bob"}, {30s}), "send");
        REQUIRE(bob_rec.wait_kind(EventKind::invitation_received, sent.invitation_id).has_value());
        get(bob.refuse_invitation(sent.invitation_id, "busy"), "refuse");
        ids.push_back(sent.invitation_id);
    }
    const std::uint64_t after = unix_ms();
    const std::set<std::string> all(ids.begin(), ids.end());
    REQUIRE(all.size() == static_cast<std::size_t>(rounds));

    // alice pages through her history 3 at a time: the first page by
    // callback, the others by future. Invitations sent within one millisecond
    // come in id order, so the order is checked by time and the ids as a set.
    std::vector<std::string> listed;
    std::vector<std::size_t> sizes;
    std::uint64_t newest = 0, oldest = 0, previous = std::numeric_limits<std::uint64_t>::max();
    beckon::InvitationQuery query{beckon::HistoryRole::any, 0, 0, 3};
    Op<beckon::InvitationPage> first(&alice_rec);
    alice.query_invitations(query, first.callback());
    beckon::Result<beckon::InvitationPage> first_page = first.wait("the first page");
    REQUIRE(first_page.ok());
    beckon::InvitationPage page = first_page.value();
    for (int pages = 0;; pages++) {
        REQUIRE(pages < 5);
        sizes.push_back(page.invitations.size());
        EXPECT(page.invitations.size() <= 3);
        for (const beckon::InvitationSummary &s : page.invitations) {
            listed.push_back(s.invitation_id);
            EXPECT(s.created_ms <= previous);
            previous = s.created_ms;
            if (newest == 0) newest = s.created_ms;
            oldest = s.created_ms;
            EXPECT_EQ(s.inviter, std::string("alice"));
            REQUIRE(s.invitees.size() == 1);
            EXPECT((s.invitees[0] == beckon::Invitee{"bob", InviteeState::rejected}));
            EXPECT(s.created_ms >= before && s.created_ms <= s.ended_ms && s.ended_ms <= after);
            EXPECT(!s.sent_by_server);
        }
        if (page.next_cursor.empty()) break;
        query.cursor = page.next_cursor;
        page = get(alice.query_invitations(query), "the next page");
    }
    EXPECT_EQ(sizes, (std::vector<std::size_t>{3, 3, 1}));
    EXPECT_EQ(listed.size(), static_cast<std::size_t>(rounds));
    EXPECT_EQ(std::set<std::string>(listed.begin(), listed.end()), all);  // with the size: each exactly once
    say("  ok  " + std::to_string(listed.size()) + " invitations in " + std::to_string(sizes.size()) +
        " pages of at most 3");

    // Roles: bob sent none and received all; alice received none.
    beckon::InvitationPage bob_sent = get(bob.query_invitations({beckon::HistoryRole::sent}), "bob's sent");
    EXPECT(bob_sent.invitations.empty());
    EXPECT(bob_sent.next_cursor.empty());
    beckon::InvitationPage bob_received =
        get(bob.query_invitations({beckon::HistoryRole::received, 0, 0, 100}), "bob's received");
    EXPECT_EQ(bob_received.invitations.size(), static_cast<std::size_t>(rounds));
    EXPECT(bob_received.next_cursor.empty());
    std::set<std::string> received_ids;
    for (const auto &s : bob_received.invitations) {
        received_ids.insert(s.invitation_id);
        EXPECT_EQ(s.inviter, std::string("alice"));
    }
    EXPECT_EQ(received_ids, all);
    EXPECT_EQ(get(bob.query_invitations(), "bob's defaults").invitations.size(), static_cast<std::size_t>(rounds));
    EXPECT(get(alice.query_invitations({beckon::HistoryRole::received}), "alice's received").invitations.empty());

    // Time ranges: until_ms is exclusive, since_ms inclusive.
    EXPECT(get(alice.query_invitations({beckon::HistoryRole::any, 1, oldest}), "before the first send")
               .invitations.empty());
    EXPECT(get(alice.query_invitations({beckon::HistoryRole::any, newest + 1}), "after the last send")
               .invitations.empty());
    EXPECT_EQ(get(alice.query_invitations({beckon::HistoryRole::any, oldest, newest + 1}), "the whole range")
                  .invitations.size(),
              static_cast<std::size_t>(rounds));

    // Bad queries: thrown at once, naming the field; their callback never runs.
    EXPECT_ERROR(ErrorCode::invalid_argument, "query.role",
                 (void)alice.query_invitations({static_cast<beckon::HistoryRole>(9)}));
    EXPECT_ERROR(ErrorCode::invalid_argument, "query.limit",
                 (void)alice.query_invitations({beckon::HistoryRole::any, 0, 0, 101}));
    EXPECT_ERROR(ErrorCode::invalid_argument, "query.until_ms",
                 (void)alice.query_invitations({beckon::HistoryRole::any, 10, 5}));
    EXPECT_ERROR(ErrorCode::invalid_argument, "query.until_ms",
                 (void)alice.query_invitations({beckon::HistoryRole::any, 10, 10}));
    EXPECT_ERROR(ErrorCode::invalid_argument, "query.cursor",
                 (void)alice.query_invitations({beckon::HistoryRole::any, 0, 0, 0, "not-a-cursor"}));
    EXPECT_ERROR(ErrorCode::invalid_argument, "query.cursor",
                 (void)alice.query_invitations({beckon::HistoryRole::any, 0, 0, 0, "\xff\xfe"}));
    EXPECT_ERROR(ErrorCode::invalid_argument, "query.cursor: contains a NUL byte (at byte 1)",
                 (void)alice.query_invitations({beckon::HistoryRole::any, 0, 0, 0, std::string("1\0", 2)}));
    EXPECT_ERROR(ErrorCode::invalid_argument, "query.limit",
                 alice.query_invitations({beckon::HistoryRole::any, 0, 0, 101}, never.callback()));
    // No callback at all is allowed.
    alice.query_invitations({}, nullptr);

    // Closed with queries in flight: each completes once, OK or SHUTDOWN.
    constexpr int in_flight = 10;
    std::vector<std::unique_ptr<Op<beckon::InvitationPage>>> flying;
    std::vector<std::future<beckon::InvitationPage>> futures;
    for (int i = 0; i < in_flight; i++) {
        flying.push_back(std::make_unique<Op<beckon::InvitationPage>>());
        alice.query_invitations({}, flying.back()->callback());
        futures.push_back(alice.query_invitations());
    }
    alice.close();
    int shut = 0;
    for (int i = 0; i < in_flight; i++) {
        EXPECT_EQ(flying[static_cast<std::size_t>(i)]->calls(), 1);
        beckon::Result<beckon::InvitationPage> r = flying[static_cast<std::size_t>(i)]->wait("a query in flight");
        if (!r.ok()) {
            EXPECT(r.error().code() == ErrorCode::shutdown);
            shut++;
        } else {
            EXPECT_EQ(r->invitations.size(), static_cast<std::size_t>(rounds));
        }
        beckon::Error e = error_of(std::move(futures[static_cast<std::size_t>(i)]), "a future in flight");
        EXPECT(e.code() == ErrorCode::ok || e.code() == ErrorCode::shutdown);
        if (e.code() == ErrorCode::shutdown) shut++;
    }
    say("  ok  " + std::to_string(shut) + " of " + std::to_string(2 * in_flight) + " queries in flight ended SHUTDOWN");
    EXPECT_ERROR(ErrorCode::invalid_argument, "closed", (void)alice.query_invitations());
    bob.close();
    EXPECT_EQ(first.calls(), 1);
    EXPECT_EQ(never.calls(), 0);
}

int main() {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    std::printf("test_hpp: beckon %s (ABI %u), C++%ld%s\n", beckon::library_version().data(),
                beckon::library_abi_version(), static_cast<long>(__cplusplus),
                slow() ? ", slow mode (valgrind)" : "");
    const std::thread::id main_thread = std::this_thread::get_id();
    test_versions_and_types();
    test_immediate_errors();
    test_flow(main_thread);
    test_cancel(main_thread);
    test_poll_mode(main_thread);
    test_destruction(main_thread);
    test_callback_exceptions();
    test_log_handler();
    test_tokens();
    test_panics();
    test_request_timeouts(main_thread);
    test_queued_log_handler(main_thread);
    test_would_deadlock();
    test_push(main_thread);
    test_history(main_thread);
    if (failures == 0) {
        std::printf("test_hpp: OK, %d checks passed\n", checks.load());
        return 0;
    }
    std::printf("test_hpp: FAILED, %d of %d checks failed\n", failures.load(), checks.load());
    return 1;
}
