/*
 * beckon.hpp: the C++17 interface of Beckon, call-invitation signaling.
 *
 * A header-only layer over the C ABI in beckon.h (no second implementation):
 * it owns clients with RAII, takes and gives standard value types, turns every
 * error code into a beckon::Error exception and offers each asynchronous
 * operation in two styles, a callback and a std::future.
 *
 *     beckon::Client bob("memory://demo");
 *     bob.on_event([&](const beckon::Event &e) {
 *         if (e.kind == beckon::EventKind::invitation_received)
 *             bob.accept_invitation(e.invitation_id, "on my way", nullptr);
 *     });
 *     bob.login("bob").get();                       // future style
 *
 *     beckon::Client alice("memory://demo");
 *     alice.login("alice").get();
 *     alice.send_invitation({"bob"}, {std::chrono::seconds(30)},
 *         [](beckon::Result<beckon::SendResult> r) {   // callback style
 *             if (r) std::printf("ringing: %s\n", r->invitation_id.c_str());
 *         });
 *
 * Rules (docs/C_API.md has the C side's):
 * - Errors. A call that the library refuses at once (bad input, not logged in)
 *   throws beckon::Error before returning; its callback never runs and no future
 *   is returned. Otherwise the callback runs exactly once, with a Result that
 *   holds the value or the Error (SHUTDOWN when the Client is destroyed first),
 *   and a future becomes ready exactly once, its get() throwing the Error.
 *   Input that cannot be passed to C faithfully (a NUL byte inside a string, a
 *   duration that does not fit the C integer) throws INVALID_ARGUMENT before any
 *   C call, with the same "field: reason" message style as the library.
 * - Threads. Every member function may be called from any thread, except
 *   that moving, assigning or closing a Client must not race with other uses
 *   of that same Client object (as for any C++ object). Callbacks,
 *   events and futures' completions of one Client run one at a time, in order,
 *   on that client's dispatcher thread (DispatchMode::thread, the default) or
 *   inside Client::poll (DispatchMode::poll). Never block on a future of a
 *   Client inside one of that Client's own callbacks: the result you wait for
 *   is queued behind the callback that waits (use the callback style there).
 *   In poll mode a future is completed only while someone polls: use
 *   Client::wait, which polls for you.
 * - Lifetimes. Everything handed to a callback is an owning value: keep it as
 *   long as you like. std::function objects are kept until their single call
 *   (operation callbacks) or until replaced (event and log handlers, which are
 *   kept alive while they run). ~Client waits until no callback of that client
 *   runs, so whatever the callbacks capture may be destroyed after it. A Client
 *   may be destroyed from inside one of its own callbacks. Closing a Client
 *   from another client's callback while a callback of the first is closing
 *   that other one would make each wait for the other: Client::close() then
 *   throws WOULD_DEADLOCK and leaves the client open (the destructor, which
 *   cannot throw, leaves it open for good: see ~Client).
 * - Timeouts. A request waits for the server at most the client's
 *   request_timeout, or the one given to that send, cancel, accept or refuse
 *   (0 for the client's); then it fails with REQUEST_TIMEOUT.
 * - Exceptions thrown by your callbacks cannot cross into the C library: they
 *   are caught and given to the handler set with set_callback_exception_handler
 *   (by default: printed to stderr, then std::terminate, as for std::thread).
 * - ABI. This header needs beckon.h of ABI 2.3 or a newer 2.x (checked when
 *   compiling), and the first Client, hub, token or log handler checks that the
 *   loaded libbeckon has that ABI too: the same major, a minor at least the
 *   header's (check_abi).
 *
 * Needs C++17 with exceptions, and libbeckon at link time (pkg-config beckon,
 * or CMake's beckon::beckon target).
 */
#ifndef BECKON_HPP
#define BECKON_HPP

#include "beckon.h"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <future>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

static_assert(BECKON_ABI_VERSION_MAJOR == 2 && BECKON_ABI_VERSION_MINOR >= 3,
              "beckon.hpp needs beckon.h of ABI 2.3 or a newer 2.x (it uses the functions 2.3 added)");

namespace beckon {

// ---- codes and enumerations ------------------------------------------------

/// A result code of the C ABI (docs/SEMANTICS.md). The numbers never change.
enum class ErrorCode : std::int32_t {
    ok = BECKON_OK,
    invalid_argument = BECKON_ERROR_INVALID_ARGUMENT,
    too_many_invitees = BECKON_ERROR_TOO_MANY_INVITEES,
    payload_too_large = BECKON_ERROR_PAYLOAD_TOO_LARGE,
    not_logged_in = BECKON_ERROR_NOT_LOGGED_IN,
    auth_failed = BECKON_ERROR_AUTH_FAILED,
    token_expired = BECKON_ERROR_TOKEN_EXPIRED,
    invitation_not_found = BECKON_ERROR_INVITATION_NOT_FOUND,
    not_permitted = BECKON_ERROR_NOT_PERMITTED,
    already_answered = BECKON_ERROR_ALREADY_ANSWERED,
    invitation_closed = BECKON_ERROR_INVITATION_CLOSED,
    network = BECKON_ERROR_NETWORK,
    request_timeout = BECKON_ERROR_REQUEST_TIMEOUT,
    rate_limited = BECKON_ERROR_RATE_LIMITED,
    shutdown = BECKON_ERROR_SHUTDOWN,
    server = BECKON_ERROR_SERVER,
    internal = BECKON_ERROR_INTERNAL,
    /// Client::close() from another client's callback while a callback of
    /// this client is closing that other client: nothing was done.
    would_deadlock = BECKON_ERROR_WOULD_DEADLOCK,
};

/// Where one invitee stands in one invitation.
enum class InviteeState : std::int32_t {
    inviting = BECKON_INVITEE_INVITING,
    accepted = BECKON_INVITEE_ACCEPTED,
    rejected = BECKON_INVITEE_REJECTED,
    cancelled = BECKON_INVITEE_CANCELLED,
    offline = BECKON_INVITEE_OFFLINE,
    received = BECKON_INVITEE_RECEIVED,
    timeout = BECKON_INVITEE_TIMEOUT,
};

/// What an Event is about; says which of its fields mean something.
enum class EventKind : std::int32_t {
    connection_state_changed = BECKON_EVENT_CONNECTION_STATE_CHANGED,
    token_will_expire = BECKON_EVENT_TOKEN_WILL_EXPIRE,
    invitation_received = BECKON_EVENT_INVITATION_RECEIVED,
    invitation_cancelled = BECKON_EVENT_INVITATION_CANCELLED,
    invitation_accepted = BECKON_EVENT_INVITATION_ACCEPTED,
    invitation_refused = BECKON_EVENT_INVITATION_REFUSED,
    invitation_timeout = BECKON_EVENT_INVITATION_TIMEOUT,
    invitation_response_timeout = BECKON_EVENT_INVITATION_RESPONSE_TIMEOUT,
    invitation_user_state_changed = BECKON_EVENT_INVITATION_USER_STATE_CHANGED,
    /// To the inviter: what happened to the push for one invitee's device
    /// (ABI 2.2).
    invitation_push_result = BECKON_EVENT_INVITATION_PUSH_RESULT,
};

/// The service a push target is reached through (ABI 2.2).
enum class PushProvider : std::int32_t {
    /// APNs alert pushes.
    apns = BECKON_PUSH_PROVIDER_APNS,
    /// APNs VoIP pushes for PushKit and CallKit.
    apns_voip = BECKON_PUSH_PROVIDER_APNS_VOIP,
    /// Firebase Cloud Messaging, high-priority data messages.
    fcm = BECKON_PUSH_PROVIDER_FCM,
    /// A signed HTTP POST to the app's own backend.
    webhook = BECKON_PUSH_PROVIDER_WEBHOOK,
};

/// Which APNs servers a device token belongs to (ABI 2.2).
enum class ApnsEnvironment : std::int32_t {
    production = BECKON_APNS_PRODUCTION,
    sandbox = BECKON_APNS_SANDBOX,
};

/// What happened to one push (ABI 2.2).
enum class PushOutcome : std::int32_t {
    sent = BECKON_PUSH_SENT,
    /// Refused by the provider or not delivered; Event::push_reason says why.
    failed = BECKON_PUSH_FAILED,
    /// The invitee was offline and none of its devices has a push target.
    no_target = BECKON_PUSH_NO_TARGET,
};

/// Which of the user's ended invitations Client::query_invitations lists
/// (ABI 2.3).
enum class HistoryRole : std::int32_t {
    /// Sent and received; the default.
    any = BECKON_HISTORY_ANY,
    /// Those the user sent (from a device, or the server API on its behalf).
    sent = BECKON_HISTORY_SENT,
    /// Those the user was invited to.
    received = BECKON_HISTORY_RECEIVED,
};

/// The state of a client's connection to its hub.
enum class ConnectionState : std::int32_t {
    disconnected = BECKON_CONNECTION_DISCONNECTED,
    connecting = BECKON_CONNECTION_CONNECTING,
    connected = BECKON_CONNECTION_CONNECTED,
    reconnecting = BECKON_CONNECTION_RECONNECTING,
};

/// Why the connection state changed.
enum class ConnectionReason : std::int32_t {
    login = BECKON_REASON_LOGIN,
    logout = BECKON_REASON_LOGOUT,
    network = BECKON_REASON_NETWORK,
    kicked_out = BECKON_REASON_KICKED_OUT,
    token_expired = BECKON_REASON_TOKEN_EXPIRED,
    server_shutdown = BECKON_REASON_SERVER_SHUTDOWN,
};

/// Where a client's callbacks run: its own thread, inside Client::poll, or on
/// the library's pool of threads shared by pool-mode clients.
enum class DispatchMode : std::int32_t {
    thread = BECKON_DISPATCH_THREAD,
    poll = BECKON_DISPATCH_POLL,
    pool = BECKON_DISPATCH_POOL,
};

/// Log levels, from quiet to chatty.
enum class LogLevel : std::int32_t {
    off = BECKON_LOG_OFF,
    error = BECKON_LOG_ERROR,
    warn = BECKON_LOG_WARN,
    info = BECKON_LOG_INFO,
    debug = BECKON_LOG_DEBUG,
    trace = BECKON_LOG_TRACE,
};

/// How log records reach the handler (set_log_handler).
enum class LogDelivery : std::uint32_t {
    /// On the thread that logs, at once, possibly while the library holds
    /// internal locks: the handler must be thread-safe and quick, and must
    /// call nothing of beckon.
    direct = BECKON_LOG_DIRECT,
    /// Queued, then delivered in order on one library thread ("beckon-log"),
    /// outside every library lock: the handler may take its time and call
    /// beckon (set_log_handler included). At most 10,000 records wait; the
    /// library drops the rest and says how many in a WARN record, sub-tag "log".
    queued = BECKON_LOG_QUEUED,
};

/// "NOT_PERMITTED", ...; "UNKNOWN" for a value that is not a code.
inline std::string_view to_string(ErrorCode code) noexcept {
    return beckon_error_name(static_cast<beckon_error>(code));
}

/// "ACCEPTED", ...; "UNKNOWN" otherwise.
inline std::string_view to_string(InviteeState state) noexcept {
    return beckon_invitee_state_name(static_cast<std::int32_t>(state));
}

/// "INVITATION_RECEIVED", ...; "UNKNOWN" otherwise.
inline std::string_view to_string(EventKind kind) noexcept {
    return beckon_event_kind_name(static_cast<std::int32_t>(kind));
}

/// "APNS_VOIP", ...; "UNKNOWN" otherwise.
inline std::string_view to_string(PushProvider provider) noexcept {
    return beckon_push_provider_name(static_cast<std::int32_t>(provider));
}

/// "SENT", "FAILED", "NO_TARGET"; "UNKNOWN" otherwise.
inline std::string_view to_string(PushOutcome outcome) noexcept {
    return beckon_push_outcome_name(static_cast<std::int32_t>(outcome));
}

/// "CONNECTED", ...; "UNKNOWN" otherwise.
inline std::string_view to_string(ConnectionState state) noexcept {
    switch (state) {
    case ConnectionState::disconnected: return "DISCONNECTED";
    case ConnectionState::connecting: return "CONNECTING";
    case ConnectionState::connected: return "CONNECTED";
    case ConnectionState::reconnecting: return "RECONNECTING";
    }
    return "UNKNOWN";
}

/// "LOGIN", "KICKED_OUT", ...; "UNKNOWN" otherwise.
inline std::string_view to_string(ConnectionReason reason) noexcept {
    switch (reason) {
    case ConnectionReason::login: return "LOGIN";
    case ConnectionReason::logout: return "LOGOUT";
    case ConnectionReason::network: return "NETWORK";
    case ConnectionReason::kicked_out: return "KICKED_OUT";
    case ConnectionReason::token_expired: return "TOKEN_EXPIRED";
    case ConnectionReason::server_shutdown: return "SERVER_SHUTDOWN";
    }
    return "UNKNOWN";
}

// ---- errors -------------------------------------------------------------------

/// A failed operation: the code and the library's message, which names the
/// argument at fault ("invitees[2]: ..."). what() is "NAME: message".
class Error : public std::runtime_error {
public:
    Error(ErrorCode code, std::string message)
        : std::runtime_error(describe(code, message)), code_(code), message_(std::move(message)) {}

    /// The code, e.g. ErrorCode::not_permitted.
    ErrorCode code() const noexcept { return code_; }
    /// The code's name, e.g. "NOT_PERMITTED".
    std::string_view name() const noexcept { return to_string(code_); }
    /// The library's message ("" only if it gave none).
    const std::string &message() const noexcept { return message_; }

private:
    static std::string describe(ErrorCode code, const std::string &message) {
        std::string text(to_string(code));
        text += ": ";
        text += message.empty() ? beckon_error_description(static_cast<beckon_error>(code))
                                : message.c_str();
        return text;
    }

    ErrorCode code_;
    std::string message_;
};

/// The outcome of an asynchronous operation, given to its callback: a value
/// or an Error. Test it with ok() or in a boolean context.
template <class T>
class Result {
public:
    Result(T value) : value_(std::move(value)) {}
    Result(Error error) : error_(std::move(error)) {}

    bool ok() const noexcept { return !error_.has_value(); }
    explicit operator bool() const noexcept { return ok(); }

    /// The value; throws the Error if the operation failed.
    T &value() & {
        if (error_) throw *error_;
        return *value_;
    }
    const T &value() const & {
        if (error_) throw *error_;
        return *value_;
    }
    T &&value() && {
        if (error_) throw *error_;
        return std::move(*value_);
    }
    T *operator->() { return &value(); }
    const T *operator->() const { return &value(); }

    /// The error; throws std::logic_error if the operation succeeded.
    const Error &error() const {
        if (!error_) throw std::logic_error("beckon::Result::error() on a success");
        return *error_;
    }

private:
    std::optional<T> value_;
    std::optional<Error> error_;
};

/// The outcome of an operation that gives nothing but success or an Error.
template <>
class Result<void> {
public:
    Result() = default;
    Result(Error error) : error_(std::move(error)) {}

    bool ok() const noexcept { return !error_.has_value(); }
    explicit operator bool() const noexcept { return ok(); }
    /// Throws the Error if the operation failed.
    void value() const {
        if (error_) throw *error_;
    }
    const Error &error() const {
        if (!error_) throw std::logic_error("beckon::Result::error() on a success");
        return *error_;
    }

private:
    std::optional<Error> error_;
};

/// A completion callback: runs exactly once with the operation's Result.
/// An empty std::function (nullptr) means "no callback".
template <class T>
using Callback = std::function<void(Result<T>)>;

// ---- value types --------------------------------------------------------------

/// A user id with its state in one invitation.
struct Invitee {
    std::string user_id;
    InviteeState state = InviteeState::inviting;

    friend bool operator==(const Invitee &a, const Invitee &b) {
        return a.user_id == b.user_id && a.state == b.state;
    }
    friend bool operator!=(const Invitee &a, const Invitee &b) { return !(a == b); }
};

/// What an offline device's push notification shows. Limits: title 256 bytes,
/// message 1 KiB, resource_id 64 bytes, payload 4 KiB.
struct Notification {
    Notification() = default;
    explicit Notification(std::string title_, std::string message_ = {}, std::string resource_id_ = {},
                 std::string payload_ = {})
        : title(std::move(title_)), message(std::move(message_)), resource_id(std::move(resource_id_)),
          payload(std::move(payload_)) {}

    std::string title;
    std::string message;
    std::string resource_id;
    std::string payload;
};

/// One event of a client, copied out of the library: an owning value.
/// Which fields mean something depends on kind (the others are empty or 0):
///
/// | kind                          | fields                                                  |
/// |-------------------------------|---------------------------------------------------------|
/// | connection_state_changed      | connection_state, connection_reason                     |
/// | token_will_expire             | seconds_left                                            |
/// | invitation_received           | invitation_id, inviter, invitees (all, with states),    |
/// |                               | extended_data, notification, seconds_left               |
/// | invitation_cancelled          | invitation_id, inviter, extended_data                   |
/// | invitation_accepted, _refused | invitation_id, user_id (the invitee), extended_data     |
/// | invitation_timeout            | invitation_id, inviter                                  |
/// | invitation_response_timeout   | invitation_id, invitees (those that timed out)          |
/// | invitation_user_state_changed | invitation_id, user_id, state, extended_data            |
/// | invitation_push_result        | invitation_id, user_id (the invitee), device_id,        |
/// |                               | push_provider, push_outcome, push_reason                |
///
/// invitation_push_result comes to the inviter for each invitee that had no
/// device online at send: one per device pushed (sent or failed, with the
/// device and its provider), or one no_target (no device, no provider).
struct Event {
    EventKind kind = EventKind::connection_state_changed;
    std::string invitation_id;
    std::string inviter;
    std::string user_id;
    InviteeState state = InviteeState::inviting;
    std::string extended_data;
    std::vector<Invitee> invitees;
    std::optional<Notification> notification;
    std::chrono::seconds seconds_left{0};
    ConnectionState connection_state = ConnectionState::disconnected;
    ConnectionReason connection_reason = ConnectionReason::login;
    /// The device a push result is about; empty for no_target.
    std::string device_id;
    /// The provider a push went through; none for no_target.
    std::optional<PushProvider> push_provider;
    /// A push result's outcome.
    std::optional<PushOutcome> push_outcome;
    /// Why a push failed (the provider's reason); empty otherwise.
    std::string push_reason;

    /// The kind's name, e.g. "INVITATION_RECEIVED".
    std::string_view name() const noexcept { return to_string(kind); }
};

/// Where a device is rung by push while it is not connected
/// (Client::set_push_target). The server keeps it past the connection; an
/// explicit logout (and closing the client, which logs out) forgets it.
struct PushTarget {
    PushTarget() = default;
    PushTarget(PushProvider provider_, std::string token_, std::string topic_ = {},
               ApnsEnvironment environment_ = ApnsEnvironment::production, std::string alert_token_ = {})
        : provider(provider_), token(std::move(token_)), topic(std::move(topic_)), environment(environment_),
          alert_token(std::move(alert_token_)) {}

    PushProvider provider = PushProvider::fcm;
    /// The APNs device token (hex; PushKit's for apns_voip), the FCM
    /// registration token, or for a webhook what the app's backend knows the
    /// device by.
    std::string token;
    /// APNs only: the bundle id; empty for the server's configured topic.
    std::string topic;
    /// APNs only.
    ApnsEnvironment environment = ApnsEnvironment::production;
    /// apns_voip only: the device's regular APNs token, where stop pushes go
    /// as alerts; empty for none.
    std::string alert_token;
};

/// The result of Client::send_invitation.
struct SendResult {
    /// The new invitation's id (never empty on success).
    std::string invitation_id;
    /// Invitees that could not be reached at once (state offline).
    std::vector<Invitee> error_invitees;
};

/// The result of Client::cancel_invitation.
struct CancelResult {
    /// Invitees that could not be cancelled (already in a terminal state).
    std::vector<Invitee> error_invitees;
};

/// Which ended invitations one page of Client::query_invitations lists
/// (ABI 2.3). The defaults (zero, empty) ask for the first 20 of both roles.
struct InvitationQuery {
    InvitationQuery() = default;
    InvitationQuery(HistoryRole role_, std::uint64_t since_ms_ = 0, std::uint64_t until_ms_ = 0,
                    std::uint32_t limit_ = 0, std::string cursor_ = {})
        : role(role_), since_ms(since_ms_), until_ms(until_ms_), limit(limit_), cursor(std::move(cursor_)) {}

    HistoryRole role = HistoryRole::any;
    /// Only invitations sent at or after this (Unix milliseconds; 0: no bound).
    std::uint64_t since_ms = 0;
    /// Only invitations sent before this (Unix milliseconds; 0: no bound);
    /// else it must be after since_ms.
    std::uint64_t until_ms = 0;
    /// Invitations per page, 1 to 100; 0 for 20.
    std::uint32_t limit = 0;
    /// Empty for the first page; else the next_cursor of the page before.
    std::string cursor;
};

/// One ended invitation of an InvitationPage.
struct InvitationSummary {
    std::string invitation_id;
    std::string inviter;
    /// Every invitee with its final state.
    std::vector<Invitee> invitees;
    /// When it was sent (Unix milliseconds).
    std::uint64_t created_ms = 0;
    /// When it ended (Unix milliseconds).
    std::uint64_t ended_ms = 0;
    /// The server API sent it on the inviter's behalf.
    bool sent_by_server = false;
};

/// The result of Client::query_invitations.
struct InvitationPage {
    /// Newest sent first; invitations sent within the same millisecond by id.
    std::vector<InvitationSummary> invitations;
    /// Empty on the last page; else the InvitationQuery::cursor of the next.
    std::string next_cursor;
};

/// How to create a Client.
struct ClientOptions {
    ClientOptions() = default;
    explicit ClientOptions(std::string server_url_, std::string device_id_ = {},
                  DispatchMode dispatch_mode_ = DispatchMode::thread,
                  std::chrono::milliseconds request_timeout_ = std::chrono::milliseconds(0))
        : server_url(std::move(server_url_)), device_id(std::move(device_id_)), dispatch_mode(dispatch_mode_),
          request_timeout(request_timeout_) {}

    /// Required: "memory://NAME" for the in-process hub NAME.
    std::string server_url;
    /// This device's id; empty for a random one.
    std::string device_id;
    /// Where callbacks run.
    DispatchMode dispatch_mode = DispatchMode::thread;
    /// How long a request may wait for the server; 0 for the default (10 s).
    std::chrono::milliseconds request_timeout{0};
};

/// How to send one invitation: `{std::chrono::seconds(30)}` at least.
struct InvitationOptions {
    InvitationOptions() = default;
    InvitationOptions(std::chrono::seconds timeout_, std::string extended_data_ = {},
                      std::optional<Notification> notification_ = std::nullopt, bool online_only_ = false,
                      std::chrono::milliseconds request_timeout_ = std::chrono::milliseconds(0))
        : timeout(timeout_), extended_data(std::move(extended_data_)), notification(std::move(notification_)),
          online_only(online_only_), request_timeout(request_timeout_) {}

    /// Required: 1 to 600 seconds.
    std::chrono::seconds timeout{0};
    /// Text for the invitees, at most 8 KiB.
    std::string extended_data;
    /// The push notification for offline devices, if any.
    std::optional<Notification> notification;
    /// Invitees with no device online are closed at once (OFFLINE) instead of
    /// kept pending until the deadline.
    bool online_only = false;
    /// How long the send may wait for the server; 0 for the client's
    /// request_timeout.
    std::chrono::milliseconds request_timeout{0};
};

/// How a memory hub behaves (create_memory_hub).
struct HubOptions {
    HubOptions() = default;
    HubOptions(std::string secret_, std::uint32_t max_invitees_ = 0,
               std::chrono::milliseconds retention_ = std::chrono::milliseconds(0))
        : secret(std::move(secret_)), max_invitees(max_invitees_), retention(retention_) {}

    /// When not empty, logins need a token made by make_token with this secret.
    std::string secret;
    /// Distinct invitees per invitation, 1 to 1000; 0 for the default (32).
    std::uint32_t max_invitees = 0;
    /// How long an ended invitation is remembered; 0 for the default (10 min).
    std::chrono::milliseconds retention{0};
};

/// Receives every event of a client (see Event).
using EventHandler = std::function<void(const Event &)>;
/// Receives one log line: level, tag ("signaling"), sub-tag and message.
using LogHandler = std::function<void(LogLevel, std::string_view tag, std::string_view sub_tag,
                                      std::string_view message)>;
/// Receives an exception that escaped one of your callbacks or handlers.
using ExceptionHandler = std::function<void(std::exception_ptr)>;

// ---- versions ------------------------------------------------------------------

/// The ABI version this header was written for: (major << 16) | minor.
inline constexpr std::uint32_t header_abi_version = BECKON_ABI_VERSION;
/// The version of the header, e.g. "0.1.0".
inline constexpr std::string_view header_version = BECKON_VERSION;

/// The loaded library's version, e.g. "0.1.0".
inline std::string_view library_version() noexcept { return beckon_version(); }
/// The loaded library's ABI version.
inline std::uint32_t library_abi_version() noexcept { return beckon_abi_version(); }

namespace detail {

// ---- plumbing (not part of the API) -------------------------------------------

/// A set_log_handler call: what to install.
struct LogRequest {
    std::shared_ptr<const LogHandler> handler;  // null: none
    LogLevel max_level = LogLevel::off;
    LogDelivery delivery = LogDelivery::direct;
};

/// Leaked on purpose: library threads may log or call back while the process
/// exits, after static destructors would have run.
struct Globals {
    std::mutex log_setter;  // held by the thread installing a handler
    std::mutex log_mutex;   // guards log_handler and log_deferred
    std::shared_ptr<const LogHandler> log_handler;
    /// The latest set_log_handler call made from inside a log handler while
    /// another thread was installing one (and possibly waiting for that very
    /// handler to return): applied by whoever holds log_setter next.
    std::optional<LogRequest> log_deferred;
    std::mutex exception_mutex;
    std::shared_ptr<const ExceptionHandler> exception_handler;
    /// Clients a destructor could not free (WOULD_DEADLOCK), with their
    /// ClientState: kept, reachable, for the rest of the process.
    std::mutex leaked_mutex;
    std::vector<std::pair<beckon_client *, void *>> leaked;
};

/// True on a thread while it runs the log handler (set_log_handler then
/// must not wait for another thread that may be waiting for this handler).
inline bool &in_log_handler() noexcept {
    thread_local bool inside = false;
    return inside;
}

inline Globals &globals() {
    static Globals *g = new Globals();
    return *g;
}

inline void report_exception(std::exception_ptr error) noexcept {
    std::shared_ptr<const ExceptionHandler> handler;
    {
        std::lock_guard<std::mutex> lock(globals().exception_mutex);
        handler = globals().exception_handler;
    }
    if (handler && *handler) {
        try {
            (*handler)(error);
            return;
        } catch (...) {
            std::fputs("beckon: the callback exception handler threw\n", stderr);
        }
    } else {
        try {
            std::rethrow_exception(error);
        } catch (const std::exception &e) {
            std::fprintf(stderr, "beckon: an exception escaped a callback: %s\n", e.what());
        } catch (...) {
            std::fputs("beckon: an exception escaped a callback\n", stderr);
        }
    }
    std::terminate();
}

/// The Error for a code just returned on this thread, with its message (read
/// first: the message lasts only until the next beckon_* call).
inline Error last_error(beckon_error code) {
    std::string message = beckon_last_error_message();
    return Error(static_cast<ErrorCode>(code), std::move(message));
}

inline Error invalid_argument(std::string message) {
    return Error(ErrorCode::invalid_argument, std::move(message));
}

inline void check(beckon_error code) {
    if (code != BECKON_OK) throw last_error(code);
}

inline std::string text(const char *s) { return s != nullptr ? std::string(s) : std::string(); }

/// A NUL-terminated copy of `value` for the duration of one C call; refuses a
/// NUL byte inside (C would silently cut the string there).
class CString {
public:
    CString(std::string_view value, const std::string &field) : value_(value) {
        std::size_t at = value_.find('\0');
        if (at != std::string::npos)
            throw invalid_argument(field + ": contains a NUL byte (at byte " + std::to_string(at) +
                                   "); text may not contain NUL");
    }
    const char *get() const noexcept { return value_.c_str(); }
    /// NULL for an empty string (for arguments where NULL means "default").
    const char *or_null() const noexcept { return value_.empty() ? nullptr : value_.c_str(); }

private:
    std::string value_;
};

/// A `const char *const *` view of a list of user ids, valid while `ids` is.
class CStringArray {
public:
    CStringArray(const std::vector<std::string> &ids, const char *field) {
        pointers_.reserve(ids.size());
        for (std::size_t i = 0; i < ids.size(); ++i) {
            std::size_t at = ids[i].find('\0');
            if (at != std::string::npos)
                throw invalid_argument(std::string(field) + "[" + std::to_string(i) +
                                       "]: contains a NUL byte (at byte " + std::to_string(at) +
                                       "); text may not contain NUL");
            pointers_.push_back(ids[i].c_str());
        }
    }
    /// NULL for an empty list (where NULL means "all": cancel).
    const char *const *data_or_null() const noexcept { return pointers_.empty() ? nullptr : pointers_.data(); }
    /// Never NULL, so that an empty list is reported as empty, not as NULL.
    const char *const *data() const noexcept {
        static const char *const none[1] = {nullptr};
        return pointers_.empty() ? none : pointers_.data();
    }
    std::size_t size() const noexcept { return pointers_.size(); }

private:
    std::vector<const char *> pointers_;
};

/// A count that must fit an unsigned 32-bit C field.
template <class Rep>
std::uint32_t to_u32(Rep count, const char *field) {
    if (count < 0 || static_cast<unsigned long long>(count) > std::numeric_limits<std::uint32_t>::max())
        throw invalid_argument(std::string(field) + ": " + std::to_string(count) + " is out of range");
    return static_cast<std::uint32_t>(count);
}

inline std::vector<Invitee> invitees(const beckon_invitee *list, std::size_t count) {
    std::vector<Invitee> out;
    if (list == nullptr) return out;
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i)
        out.push_back(Invitee{text(list[i].user_id), static_cast<InviteeState>(list[i].state)});
    return out;
}

inline Event to_event(const beckon_event &e) {
    Event ev;
    ev.kind = static_cast<EventKind>(e.kind);
    ev.invitation_id = text(e.invitation_id);
    ev.inviter = text(e.inviter);
    ev.user_id = text(e.user_id);
    ev.state = static_cast<InviteeState>(e.state);
    ev.extended_data = text(e.extended_data);
    ev.invitees = invitees(e.invitees, e.invitee_count);
    if (e.notification != nullptr)
        ev.notification = Notification{text(e.notification->title), text(e.notification->message),
                                       text(e.notification->resource_id), text(e.notification->payload)};
    ev.seconds_left = std::chrono::seconds(e.seconds_left);
    ev.connection_state = static_cast<ConnectionState>(e.connection_state);
    ev.connection_reason = static_cast<ConnectionReason>(e.connection_reason);
    // 2.2 fields: the library is checked to be 2.2 or later (check_abi).
    ev.device_id = text(e.device_id);
    if (e.push_provider != 0) ev.push_provider = static_cast<PushProvider>(e.push_provider);
    if (e.push_outcome != 0) ev.push_outcome = static_cast<PushOutcome>(e.push_outcome);
    ev.push_reason = text(e.push_reason);
    return ev;
}

/// What the C library holds as a client's event user_data. Lives on the heap,
/// so it does not move when the Client does; freed after beckon_client_free.
class ClientState {
public:
    explicit ClientState(DispatchMode mode) : mode_(mode) {}

    void set_handler(EventHandler handler) {
        auto next = handler ? std::make_shared<const EventHandler>(std::move(handler)) : nullptr;
        std::lock_guard<std::mutex> lock(mutex_);
        handler_.swap(next);
        // The old handler (now in `next`) is released after the unlock; a
        // call running it holds its own reference until it returns.
    }

    std::shared_ptr<const EventHandler> handler() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return handler_;
    }

    DispatchMode mode() const noexcept { return mode_; }

private:
    DispatchMode mode_;
    mutable std::mutex mutex_;
    std::shared_ptr<const EventHandler> handler_;
};

/// One operation's callback, owned by the C library between the call and its
/// single callback (deleted by the trampoline).
template <class T>
struct Pending {
    Callback<T> done;
};

template <class T>
void complete(Pending<T> &pending, Result<T> &&result) noexcept {
    try {
        pending.done(std::move(result));
    } catch (...) {
        report_exception(std::current_exception());
    }
}

/// A callback that fulfils the returned future.
template <class T>
std::pair<std::future<T>, Callback<T>> promised() {
    auto promise = std::make_shared<std::promise<T>>();
    std::future<T> future = promise->get_future();
    Callback<T> done = [promise](Result<T> result) {
        if (!result.ok()) {
            promise->set_exception(std::make_exception_ptr(result.error()));
        } else if constexpr (std::is_void_v<T>) {
            promise->set_value();
        } else {
            promise->set_value(std::move(result).value());
        }
    };
    return {std::move(future), std::move(done)};
}

// Trampolines from the C callbacks into C++ (C language linkage, as the C
// function pointer types expect). None lets an exception out.
extern "C" {

inline void beckon_hpp_on_result(void *user_data, const beckon_result *r) noexcept {
    std::unique_ptr<Pending<void>> pending(static_cast<Pending<void> *>(user_data));
    if (r->error == BECKON_OK) {
        complete(*pending, Result<void>());
        return;
    }
    try {
        complete(*pending, Result<void>(Error(static_cast<ErrorCode>(r->error), text(r->error_message))));
    } catch (...) {  // allocating the Error
        report_exception(std::current_exception());
    }
}

inline void beckon_hpp_on_send(void *user_data, const beckon_send_result *r) noexcept {
    std::unique_ptr<Pending<SendResult>> pending(static_cast<Pending<SendResult> *>(user_data));
    try {
        if (r->error == BECKON_OK)
            complete(*pending, Result<SendResult>(SendResult{
                                   text(r->invitation_id), invitees(r->error_invitees, r->error_invitee_count)}));
        else
            complete(*pending, Result<SendResult>(Error(static_cast<ErrorCode>(r->error), text(r->error_message))));
    } catch (...) {
        report_exception(std::current_exception());
    }
}

inline void beckon_hpp_on_cancel(void *user_data, const beckon_cancel_result *r) noexcept {
    std::unique_ptr<Pending<CancelResult>> pending(static_cast<Pending<CancelResult> *>(user_data));
    try {
        if (r->error == BECKON_OK)
            complete(*pending,
                     Result<CancelResult>(CancelResult{invitees(r->error_invitees, r->error_invitee_count)}));
        else
            complete(*pending,
                     Result<CancelResult>(Error(static_cast<ErrorCode>(r->error), text(r->error_message))));
    } catch (...) {
        report_exception(std::current_exception());
    }
}

inline void beckon_hpp_on_page(void *user_data, const beckon_invitation_page_result *r) noexcept {
    std::unique_ptr<Pending<InvitationPage>> pending(static_cast<Pending<InvitationPage> *>(user_data));
    try {
        if (r->error == BECKON_OK) {
            InvitationPage page;
            if (r->invitations != nullptr) {
                page.invitations.reserve(r->invitation_count);
                for (std::size_t i = 0; i < r->invitation_count; ++i) {
                    const beckon_invitation_summary &s = r->invitations[i];
                    page.invitations.push_back(InvitationSummary{text(s.invitation_id), text(s.inviter),
                                                                 invitees(s.invitees, s.invitee_count),
                                                                 s.created_ms, s.ended_ms, s.sent_by_server != 0});
                }
            }
            page.next_cursor = text(r->next_cursor);
            complete(*pending, Result<InvitationPage>(std::move(page)));
        } else {
            complete(*pending,
                     Result<InvitationPage>(Error(static_cast<ErrorCode>(r->error), text(r->error_message))));
        }
    } catch (...) {
        report_exception(std::current_exception());
    }
}

inline void beckon_hpp_on_event(void *user_data, const beckon_event *event) noexcept {
    // Read the state before the handler runs: the handler may destroy the
    // Client (and with it the state); the copy keeps the handler alive.
    std::shared_ptr<const EventHandler> handler = static_cast<ClientState *>(user_data)->handler();
    if (!handler) return;
    try {
        (*handler)(to_event(*event));
    } catch (...) {
        report_exception(std::current_exception());
    }
}

inline void beckon_hpp_on_log(void *, int32_t level, const char *tag, const char *sub_tag,
                              const char *message) noexcept {
    std::shared_ptr<const LogHandler> handler;
    {
        std::lock_guard<std::mutex> lock(globals().log_mutex);
        handler = globals().log_handler;
    }
    if (!handler) return;
    bool &inside = in_log_handler();
    const bool outer = inside;
    inside = true;
    try {
        (*handler)(static_cast<LogLevel>(level), tag ? tag : "", sub_tag ? sub_tag : "",
                   message ? message : "");
    } catch (...) {
        report_exception(std::current_exception());
    }
    inside = outer;
}

}  // extern "C"

/// Allocates the Pending for `done` (nullptr when there is no callback).
template <class T>
std::unique_ptr<Pending<T>> pending_for(Callback<T> done) {
    if (!done) return nullptr;
    return std::unique_ptr<Pending<T>>(new Pending<T>{std::move(done)});
}

/// Hands `pending` to the C library if `code` is OK; throws otherwise (the
/// library then never calls back, and the Pending is freed here).
template <class T>
void submit(beckon_error code, std::unique_ptr<Pending<T>> &pending) {
    if (code != BECKON_OK) throw last_error(code);
    pending.release();  // now owned by the C library until the callback
}

}  // namespace detail

/// "major.minor" of an ABI version.
inline std::string abi_version_text(std::uint32_t version) {
    return std::to_string(version >> 16) + "." + std::to_string(version & 0xFFFFu);
}

/// Throws beckon::Error (INTERNAL) unless the loaded libbeckon serves the ABI
/// version this header was written for: the same major, and a minor at least
/// the header's. Checked once per process.
inline void check_abi() {
    static const std::uint32_t loaded = beckon_abi_version();
    if (!BECKON_ABI_COMPATIBLE(loaded))
        throw Error(ErrorCode::internal,
                    "libbeckon " + std::string(library_version()) + " has ABI version " +
                        abi_version_text(loaded) + ", but beckon.hpp " + std::string(header_version) +
                        " needs ABI " + abi_version_text(header_abi_version) +
                        " (the same major, an equal or newer minor)");
}

/// Sets the handler that receives exceptions escaping your callbacks (nullptr
/// restores the default: print to stderr, then std::terminate). If it returns,
/// the library goes on with its next callback.
inline void set_callback_exception_handler(ExceptionHandler handler) {
    auto next = handler ? std::make_shared<const ExceptionHandler>(std::move(handler)) : nullptr;
    std::lock_guard<std::mutex> lock(detail::globals().exception_mutex);
    detail::globals().exception_handler.swap(next);
}

namespace detail {

/// Installs `request` (log_setter held): the wrapper's handler first, then the
/// library's configuration, which returns once the handler it replaces is not
/// running and will not be called again (but for a call on this very thread).
inline void apply_log(Globals &g, const LogRequest &request) {
    const bool on = request.handler != nullptr && request.max_level != LogLevel::off;
    std::shared_ptr<const LogHandler> old;
    {
        std::lock_guard<std::mutex> lock(g.log_mutex);
        old = std::exchange(g.log_handler, on ? request.handler : nullptr);
    }
    beckon_log_config config{};
    config.struct_size = sizeof config;
    config.max_level = on ? static_cast<std::int32_t>(request.max_level) : BECKON_LOG_OFF;
    config.delivery = static_cast<std::uint32_t>(request.delivery);
    config.reserved = 0;
    config.handler = on ? beckon_hpp_on_log : nullptr;
    config.user_data = &g;
    beckon_error code = beckon_set_log_config(&config);
    if (code != BECKON_OK) {
        Error error = last_error(code);
        // Nothing was installed: the library keeps the old handler, and so
        // does the wrapper.
        std::lock_guard<std::mutex> lock(g.log_mutex);
        g.log_handler = std::move(old);
        throw error;
    }
    // `old` is released here, after the library let go of it.
}

/// Unlocks log_setter, first applying the requests deferred by calls from
/// inside the log handler; one deferred after the last check is applied by
/// whoever holds log_setter then (each holder checks again after unlocking).
inline void release_log_setter(Globals &g, std::unique_lock<std::mutex> &setter) noexcept {
    for (;;) {
        for (;;) {
            std::optional<LogRequest> next;
            {
                std::lock_guard<std::mutex> lock(g.log_mutex);
                next.swap(g.log_deferred);
            }
            if (!next) break;
            try {
                apply_log(g, *next);
            } catch (...) {
                report_exception(std::current_exception());
            }
        }
        setter.unlock();
        {
            std::lock_guard<std::mutex> lock(g.log_mutex);
            if (!g.log_deferred) return;
        }
        if (!setter.try_lock()) return;  // its holder applies it
    }
}

}  // namespace detail

/// Installs the process-wide log handler for levels up to `max_level`;
/// nullptr or LogLevel::off stops logging. Returns once the handler it
/// replaces is not running and will never be called again, so what that one
/// uses may be released. Calls from several threads apply one at a time.
///
/// - LogDelivery::direct (the default): the handler may run on any library
///   thread, concurrently, while the library holds internal locks: keep it
///   thread-safe and quick, and call nothing of beckon from it.
/// - LogDelivery::queued: it runs on the library's log thread, one record at
///   a time, in order, outside every library lock: it may be slow and call
///   beckon, set_log_handler included. Called from inside the handler,
///   set_log_handler does not wait for that call; if another thread is
///   installing a handler meanwhile (and so waits for this one to return),
///   the request is applied by that thread, after its own.
///
/// Throws INVALID_ARGUMENT for a level or delivery that is not one of the
/// enumerations' values.
inline void set_log_handler(LogHandler handler, LogLevel max_level = LogLevel::info,
                            LogDelivery delivery = LogDelivery::direct) {
    check_abi();
    const auto level = static_cast<std::int32_t>(max_level);
    if (level < BECKON_LOG_OFF || level > BECKON_LOG_TRACE)
        throw detail::invalid_argument("config.max_level: " + std::to_string(level) + " is not a LogLevel");
    const auto how = static_cast<std::uint32_t>(delivery);
    if (how != BECKON_LOG_DIRECT && how != BECKON_LOG_QUEUED)
        throw detail::invalid_argument("config.delivery: " + std::to_string(how) + " is not a LogDelivery");
    detail::LogRequest request;
    if (handler) request.handler = std::make_shared<const LogHandler>(std::move(handler));
    request.max_level = max_level;
    request.delivery = delivery;

    detail::Globals &g = detail::globals();
    std::unique_lock<std::mutex> setter(g.log_setter, std::defer_lock);
    if (detail::in_log_handler() && !setter.try_lock()) {
        // Another thread is installing a handler, possibly waiting for this
        // very handler to return: waiting for it here could hang both.
        {
            std::lock_guard<std::mutex> lock(g.log_mutex);
            g.log_deferred = std::move(request);
        }
        if (setter.try_lock()) detail::release_log_setter(g, setter);  // it finished meanwhile
        return;
    }
    if (!setter.owns_lock()) setter.lock();
    try {
        detail::apply_log(g, request);
    } catch (...) {
        detail::release_log_setter(g, setter);
        throw;
    }
    detail::release_log_setter(g, setter);
}

/// Creates the memory hub `name` (then reached as "memory://NAME") with
/// `options`. Throws INVALID_ARGUMENT if a hub of that name already exists,
/// including one made by a client's first use of the name.
inline void create_memory_hub(std::string_view name, const HubOptions &options = {}) {
    check_abi();
    detail::CString c_name(name, "name");
    detail::CString secret(options.secret, "config.secret");
    beckon_hub_config config{};
    config.struct_size = sizeof config;
    config.secret = secret.or_null();
    config.max_invitees = options.max_invitees;
    config.retention_ms = detail::to_u32(options.retention.count(), "config.retention_ms");
    detail::check(beckon_memory_hub_create(c_name.get(), &config));
}

/// A login token for `user_id` valid until `expiry_unix_seconds`, signed with
/// `secret` (the recipe is in docs/C_API.md: any backend can make the same).
inline std::string make_token(std::string_view secret, std::string_view user_id,
                              std::uint64_t expiry_unix_seconds) {
    check_abi();
    detail::CString c_secret(secret, "secret");
    detail::CString c_user(user_id, "user_id");
    char buffer[BECKON_TOKEN_MAX_LEN] = {};
    detail::check(beckon_token_create(c_secret.get(), c_user.get(), expiry_unix_seconds, buffer, sizeof buffer));
    return std::string(buffer);
}

/// A login token valid until `expiry`.
inline std::string make_token(std::string_view secret, std::string_view user_id,
                              std::chrono::system_clock::time_point expiry) {
    auto seconds = std::chrono::duration_cast<std::chrono::seconds>(expiry.time_since_epoch()).count();
    if (seconds < 0) throw detail::invalid_argument("expiry_unix_seconds: before 1970");
    return make_token(secret, user_id, static_cast<std::uint64_t>(seconds));
}

// ---- the client -------------------------------------------------------------------

/// One device of one user. Owns a beckon_client: move-only, freed by close()
/// or the destructor (which log out, complete every pending operation with
/// SHUTDOWN and return when no callback of this client runs any more).
class Client {
public:
    /// Creates a client; nothing connects until login. Throws beckon::Error.
    explicit Client(const ClientOptions &options) {
        check_abi();
        detail::CString url(options.server_url, "config.server_url");
        detail::CString device(options.device_id, "config.device_id");
        beckon_client_config config{};
        config.struct_size = sizeof config;
        config.server_url = url.get();
        config.device_id = device.or_null();
        config.dispatch_mode = static_cast<std::int32_t>(options.dispatch_mode);
        config.request_timeout_ms = detail::to_u32(options.request_timeout.count(), "config.request_timeout_ms");
        auto state = std::make_unique<detail::ClientState>(options.dispatch_mode);
        beckon_client *handle = nullptr;
        detail::check(beckon_client_new(&config, &handle));
        beckon_error code = beckon_client_set_event_handler(handle, detail::beckon_hpp_on_event, state.get());
        if (code != BECKON_OK) {
            Error error = detail::last_error(code);
            (void)beckon_client_free(handle);  // nothing started: nothing to wait for
            throw error;
        }
        handle_ = handle;
        state_ = std::move(state);
    }

    /// A thread-mode client of `server_url` with a random device id.
    explicit Client(std::string_view server_url) : Client(ClientOptions(std::string(server_url))) {}

    /// Frees the client, as close() does, but cannot throw: if the library
    /// refuses with WOULD_DEADLOCK (destroyed from another client's callback
    /// while a callback of this client destroys that other one), the client
    /// is left open for the rest of the process rather than hang or
    /// terminate: its event handler is removed, operations in flight may
    /// still complete their callbacks, its memory stays allocated, and a note
    /// goes to stderr. Call close() first where that can happen.
    ~Client() { dispose(); }

    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;

    Client(Client &&other) noexcept
        : handle_(std::exchange(other.handle_, nullptr)), state_(std::move(other.state_)) {}

    /// Disposes of this client's own one first, as the destructor does.
    Client &operator=(Client &&other) noexcept {
        if (this != &other) {
            dispose();
            handle_ = std::exchange(other.handle_, nullptr);
            state_ = std::move(other.state_);
        }
        return *this;
    }

    /// Frees the client now; afterwards every operation throws
    /// INVALID_ARGUMENT. Does nothing the second time. Throws WOULD_DEADLOCK,
    /// having done nothing (the client stays open and usable), when called
    /// from another client's callback while a callback of this client is
    /// closing that other client: each would wait for the other. Close it
    /// again later, outside the callbacks.
    void close() {
        if (handle_ == nullptr) return;
        detail::check(beckon_client_free(handle_));
        handle_ = nullptr;
        state_.reset();  // no callback uses it any more
    }

    /// False once moved from or closed.
    bool is_open() const noexcept { return handle_ != nullptr; }
    explicit operator bool() const noexcept { return is_open(); }

    /// The C handle, for calls this wrapper does not cover. Still owned here.
    beckon_client *native_handle() const noexcept { return handle_; }

    /// Sets the function that receives this client's events (nullptr removes
    /// it). Events that arrive while no handler is set are dropped.
    void on_event(EventHandler handler) { state()->set_handler(std::move(handler)); }

    // -- future style: the future's get() returns the value or throws Error --

    /// Logs in as `user_id`. Memory hubs without a secret accept any token.
    [[nodiscard]] std::future<void> login(std::string_view user_id, std::string_view token = {}) {
        auto [future, done] = detail::promised<void>();
        login(user_id, token, std::move(done));
        return std::move(future);
    }

    /// Logs out; if this was the user's last device, the invitations it sent
    /// that still ring are cancelled.
    [[nodiscard]] std::future<void> logout() {
        auto [future, done] = detail::promised<void>();
        logout(std::move(done));
        return std::move(future);
    }

    /// Replaces the session's token before it expires.
    [[nodiscard]] std::future<void> renew_token(std::string_view token) {
        auto [future, done] = detail::promised<void>();
        renew_token(token, std::move(done));
        return std::move(future);
    }

    /// Sends an invitation: every online device of every invitee rings.
    [[nodiscard]] std::future<SendResult> send_invitation(const std::vector<std::string> &invitees,
                                                          const InvitationOptions &options) {
        auto [future, done] = detail::promised<SendResult>();
        send_invitation(invitees, options, std::move(done));
        return std::move(future);
    }

    /// Cancels an invitation for the listed invitees, or all (empty list).
    /// `request_timeout`: how long it may wait for the server (0: the
    /// client's request timeout).
    [[nodiscard]] std::future<CancelResult> cancel_invitation(
        std::string_view invitation_id, const std::vector<std::string> &invitees = {},
        std::string_view extended_data = {}, std::chrono::milliseconds request_timeout = std::chrono::milliseconds(0)) {
        auto [future, done] = detail::promised<CancelResult>();
        cancel_invitation(invitation_id, invitees, extended_data, request_timeout, std::move(done));
        return std::move(future);
    }

    /// Accepts an invitation this user was invited to (first answer wins).
    /// `request_timeout`: as for cancel_invitation.
    [[nodiscard]] std::future<void> accept_invitation(
        std::string_view invitation_id, std::string_view extended_data = {},
        std::chrono::milliseconds request_timeout = std::chrono::milliseconds(0)) {
        auto [future, done] = detail::promised<void>();
        accept_invitation(invitation_id, extended_data, request_timeout, std::move(done));
        return std::move(future);
    }

    /// Refuses an invitation this user was invited to.
    [[nodiscard]] std::future<void> refuse_invitation(
        std::string_view invitation_id, std::string_view extended_data = {},
        std::chrono::milliseconds request_timeout = std::chrono::milliseconds(0)) {
        auto [future, done] = detail::promised<void>();
        refuse_invitation(invitation_id, extended_data, request_timeout, std::move(done));
        return std::move(future);
    }

    /// Rings this device by push while it is not connected, replacing its
    /// target. Kept by the server past this connection (no need to set it
    /// again after a reconnect); forgotten at an explicit logout or close(),
    /// so set it again after logging in anew. Bad targets throw at once
    /// (INVALID_ARGUMENT or PAYLOAD_TOO_LARGE, naming target.<field>); a
    /// server that does not push through the provider fails the future with
    /// INVALID_ARGUMENT.
    [[nodiscard]] std::future<void> set_push_target(const PushTarget &target) {
        auto [future, done] = detail::promised<void>();
        set_push_target(target, std::move(done));
        return std::move(future);
    }

    /// Forgets this device's push target, if it has one.
    [[nodiscard]] std::future<void> clear_push_target() {
        auto [future, done] = detail::promised<void>();
        clear_push_target(std::move(done));
        return std::move(future);
    }

    /// A page of this user's ended invitations (ABI 2.3), newest sent first,
    /// from the server's history (by default each user's latest 100, for 7
    /// days). For the next page, query again with the page's next_cursor as
    /// the cursor (it is empty on the last page). Bad queries throw at once
    /// (INVALID_ARGUMENT naming query.role, query.limit, query.until_ms or
    /// query.cursor), and so does a client that is not logged in
    /// (NOT_LOGGED_IN).
    [[nodiscard]] std::future<InvitationPage> query_invitations(const InvitationQuery &query = {}) {
        auto [future, done] = detail::promised<InvitationPage>();
        query_invitations(query, std::move(done));
        return std::move(future);
    }

    // -- callback style: `done` runs exactly once unless the call throws ------

    void login(std::string_view user_id, std::string_view token, Callback<void> done) {
        detail::CString user(user_id, "user_id");
        detail::CString c_token(token, "token");
        auto pending = detail::pending_for(std::move(done));
        detail::submit(beckon_client_login(handle(), user.get(), c_token.get(),
                                           pending ? detail::beckon_hpp_on_result : nullptr, pending.get()),
                       pending);
    }

    /// The state of the last CONNECTION_STATE_CHANGED event this client
    /// dispatched (disconnected before any).
    ConnectionState connection_state() const { return static_cast<ConnectionState>(info().connection_state); }
    /// The logged-in user; empty unless a login has succeeded and no logout
    /// or end of session has happened since.
    std::string user_id() const { return info().user_id; }
    /// This client's device id: the configured one, or the random one it made.
    std::string device_id() const { return info().device_id; }

    void logout(Callback<void> done) {
        auto pending = detail::pending_for(std::move(done));
        detail::submit(
            beckon_client_logout(handle(), pending ? detail::beckon_hpp_on_result : nullptr, pending.get()),
            pending);
    }

    void renew_token(std::string_view token, Callback<void> done) {
        detail::CString c_token(token, "token");
        auto pending = detail::pending_for(std::move(done));
        detail::submit(beckon_client_renew_token(handle(), c_token.get(),
                                                 pending ? detail::beckon_hpp_on_result : nullptr, pending.get()),
                       pending);
    }

    void send_invitation(const std::vector<std::string> &invitees, const InvitationOptions &options,
                         Callback<SendResult> done) {
        detail::CStringArray ids(invitees, "invitees");
        detail::CString data(options.extended_data, "config.extended_data");
        beckon_invitation_config config{};
        config.struct_size = sizeof config;
        config.timeout_seconds = detail::to_u32(options.timeout.count(), "config.timeout_seconds");
        config.extended_data = data.get();
        config.flags = options.online_only ? BECKON_INVITATION_ONLINE_ONLY : 0u;
        config.request_timeout_ms = detail::to_u32(options.request_timeout.count(), "config.request_timeout_ms");
        std::optional<detail::CString> title, message, resource_id, payload;
        beckon_notification_config note{};
        if (options.notification) {
            title.emplace(options.notification->title, "config.notification.title");
            message.emplace(options.notification->message, "config.notification.message");
            resource_id.emplace(options.notification->resource_id, "config.notification.resource_id");
            payload.emplace(options.notification->payload, "config.notification.payload");
            note.struct_size = sizeof note;
            note.title = title->get();
            note.message = message->get();
            note.resource_id = resource_id->get();
            note.payload = payload->get();
            config.notification = &note;
        }
        auto pending = detail::pending_for(std::move(done));
        detail::submit(beckon_send_invitation(handle(), ids.data(), ids.size(), &config,
                                              pending ? detail::beckon_hpp_on_send : nullptr, pending.get()),
                       pending);
    }

    void cancel_invitation(std::string_view invitation_id, const std::vector<std::string> &invitees,
                           std::string_view extended_data, Callback<CancelResult> done) {
        cancel_invitation(invitation_id, invitees, extended_data, std::chrono::milliseconds(0), std::move(done));
    }

    void cancel_invitation(std::string_view invitation_id, const std::vector<std::string> &invitees,
                           std::string_view extended_data, std::chrono::milliseconds request_timeout,
                           Callback<CancelResult> done) {
        detail::CString id(invitation_id, "invitation_id");
        detail::CStringArray ids(invitees, "config.invitees");
        detail::CString data(extended_data, "config.extended_data");
        beckon_cancel_config config{};
        config.struct_size = sizeof config;
        config.request_timeout_ms = detail::to_u32(request_timeout.count(), "config.request_timeout_ms");
        config.invitees = ids.data_or_null();
        config.invitee_count = ids.size();
        config.extended_data = data.get();
        auto pending = detail::pending_for(std::move(done));
        detail::submit(beckon_cancel_invitation_ex(handle(), id.get(), &config,
                                                   pending ? detail::beckon_hpp_on_cancel : nullptr, pending.get()),
                       pending);
    }

    void accept_invitation(std::string_view invitation_id, std::string_view extended_data, Callback<void> done) {
        accept_invitation(invitation_id, extended_data, std::chrono::milliseconds(0), std::move(done));
    }

    void accept_invitation(std::string_view invitation_id, std::string_view extended_data,
                           std::chrono::milliseconds request_timeout, Callback<void> done) {
        answer(beckon_accept_invitation_ex, invitation_id, extended_data, request_timeout, std::move(done));
    }

    void refuse_invitation(std::string_view invitation_id, std::string_view extended_data, Callback<void> done) {
        refuse_invitation(invitation_id, extended_data, std::chrono::milliseconds(0), std::move(done));
    }

    void refuse_invitation(std::string_view invitation_id, std::string_view extended_data,
                           std::chrono::milliseconds request_timeout, Callback<void> done) {
        answer(beckon_refuse_invitation_ex, invitation_id, extended_data, request_timeout, std::move(done));
    }

    void set_push_target(const PushTarget &target, Callback<void> done) {
        detail::CString token(target.token, "target.token");
        detail::CString topic(target.topic, "target.topic");
        detail::CString alert_token(target.alert_token, "target.alert_token");
        beckon_push_target c{};
        c.struct_size = sizeof c;
        c.provider = static_cast<std::int32_t>(target.provider);
        c.token = token.get();
        c.topic = topic.or_null();
        c.environment = static_cast<std::int32_t>(target.environment);
        c.alert_token = alert_token.or_null();
        auto pending = detail::pending_for(std::move(done));
        detail::submit(beckon_client_set_push_target(handle(), &c, pending ? detail::beckon_hpp_on_result : nullptr,
                                                     pending.get()),
                       pending);
    }

    void clear_push_target(Callback<void> done) {
        auto pending = detail::pending_for(std::move(done));
        detail::submit(beckon_client_clear_push_target(handle(), pending ? detail::beckon_hpp_on_result : nullptr,
                                                       pending.get()),
                       pending);
    }

    void query_invitations(const InvitationQuery &query, Callback<InvitationPage> done) {
        detail::CString cursor(query.cursor, "query.cursor");
        beckon_invitation_query c{};
        c.struct_size = sizeof c;
        c.role = static_cast<std::int32_t>(query.role);
        c.since_ms = query.since_ms;
        c.until_ms = query.until_ms;
        c.limit = query.limit;
        c.cursor = cursor.or_null();
        auto pending = detail::pending_for(std::move(done));
        detail::submit(beckon_query_invitations(handle(), &c, pending ? detail::beckon_hpp_on_page : nullptr,
                                                pending.get()),
                       pending);
    }

    // -- poll mode ---------------------------------------------------------------

    /// Poll mode only: waits up to `timeout` for a callback to be due, then
    /// runs on this thread the callbacks queued at that moment. Returns how
    /// many ran. Throws INVALID_ARGUMENT in thread mode, for a timeout out of
    /// range (0 to 1 h), or from inside one of this client's callbacks.
    int poll(std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
        auto ms = timeout.count();
        if (ms < std::numeric_limits<std::int32_t>::min() || ms > std::numeric_limits<std::int32_t>::max())
            throw detail::invalid_argument("timeout_ms: " + std::to_string(ms) + " is out of range");
        std::uint32_t ran = 0;
        detail::check(beckon_client_poll(handle(), static_cast<std::int32_t>(ms), &ran));
        constexpr auto most = static_cast<std::uint32_t>(std::numeric_limits<int>::max());
        return static_cast<int>(ran < most ? ran : most);
    }

    /// Waits up to `timeout` for `future` to be ready: in poll mode by polling
    /// this client (so its callbacks run here), in thread mode by waiting.
    /// Returns whether it is ready.
    template <class T>
    bool wait(const std::future<T> &future, std::chrono::milliseconds timeout) {
        using clock = std::chrono::steady_clock;
        const auto deadline = clock::now() + timeout;
        const bool polling = state()->mode() == DispatchMode::poll;
        while (future.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
            if (left.count() <= 0) return false;
            if (polling)
                poll(std::min(left, std::chrono::milliseconds(100)));
            else
                future.wait_for(left);
        }
        return true;
    }

private:
    using AnswerFunction = beckon_error (*)(beckon_client *, const char *, const beckon_answer_config *,
                                            beckon_result_callback, void *);

    /// beckon_accept_invitation_ex or beckon_refuse_invitation_ex.
    void answer(AnswerFunction function, std::string_view invitation_id, std::string_view extended_data,
                std::chrono::milliseconds request_timeout, Callback<void> done) {
        detail::CString id(invitation_id, "invitation_id");
        detail::CString data(extended_data, "config.extended_data");
        beckon_answer_config config{};
        config.struct_size = sizeof config;
        config.request_timeout_ms = detail::to_u32(request_timeout.count(), "config.request_timeout_ms");
        config.extended_data = data.get();
        auto pending = detail::pending_for(std::move(done));
        detail::submit(function(handle(), id.get(), &config, pending ? detail::beckon_hpp_on_result : nullptr,
                                pending.get()),
                       pending);
    }

    /// The destructor's close(): frees, or on WOULD_DEADLOCK leaves the client
    /// open for good (see ~Client).
    void dispose() noexcept {
        if (handle_ == nullptr) return;
        beckon_error code = beckon_client_free(handle_);
        if (code != BECKON_OK) {
            std::string message = beckon_last_error_message();
            std::fprintf(stderr,
                         "beckon: ~Client could not free its client (%s: %s); it is left open, and leaked\n",
                         beckon_error_name(code), message.c_str());
            try {
                state_->set_handler(nullptr);
                detail::Globals &g = detail::globals();
                std::lock_guard<std::mutex> lock(g.leaked_mutex);
                g.leaked.emplace_back(handle_, state_.get());
            } catch (...) {  // out of memory: leaked all the same
            }
            (void)state_.release();  // the live client's callbacks still use it
        }
        handle_ = nullptr;
        state_.reset();
    }

    beckon_client_info info() const {
        beckon_client_info info{};
        info.struct_size = sizeof info;
        detail::check(beckon_client_get_info(handle(), &info));
        return info;
    }

    beckon_client *handle() const {
        if (handle_ == nullptr)
            throw detail::invalid_argument("client: this beckon::Client was moved from or closed");
        return handle_;
    }

    detail::ClientState *state() const {
        if (!state_) throw detail::invalid_argument("client: this beckon::Client was moved from or closed");
        return state_.get();
    }

    beckon_client *handle_ = nullptr;
    std::unique_ptr<detail::ClientState> state_;
};

}  // namespace beckon

#endif /* BECKON_HPP */
