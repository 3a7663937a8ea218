// The invitation flow on the embedded memory:// hub, from C++ (beckon.hpp).
//
// alice invites bob; bob's device rings (INVITATION_RECEIVED) and bob accepts
// from his event handler; alice hears it (INVITATION_ACCEPTED). Futures for
// the steps main waits on, callbacks for the rest (and always inside handlers).
//
// Build against an installed libbeckon:
//   c++ -std=c++17 demo.cpp $(pkg-config --cflags --libs beckon) -o demo
#include "beckon.hpp"

#include <chrono>
#include <cstdio>
#include <future>
#include <mutex>
#include <string>

using namespace std::chrono_literals;

namespace {

std::mutex print_lock;

void say(const char *who, const std::string &line) {
    std::lock_guard<std::mutex> lock(print_lock);
    std::printf("[%-5s] %s\n", who, line.c_str());
    std::fflush(stdout);
}

}  // namespace

int main() {
    try {
        beckon::check_abi();
        std::printf("beckon %s (ABI %u) on memory://cpp-demo\n\n", beckon::library_version().data(),
                    beckon::library_abi_version());

        // Declared before the clients, so it outlives their callbacks.
        std::promise<std::string> answer;
        beckon::Client alice("memory://cpp-demo");
        beckon::Client bob("memory://cpp-demo");

        // bob: ring, then accept (callback style: never block inside a handler).
        bob.on_event([&bob](const beckon::Event &e) {
            if (e.kind != beckon::EventKind::invitation_received) return;
            say("bob", "ringing: invitation " + e.invitation_id + " from " + e.inviter + ", data '" +
                           e.extended_data + "', " + std::to_string(e.seconds_left.count()) + " s left");
            bob.accept_invitation(e.invitation_id, "on my way", [](beckon::Result<void> r) {
                say("bob", r ? "accepted" : std::string("accept failed: ") + r.error().what());
            });
        });

        // alice: hear the answer.
        alice.on_event([&answer](const beckon::Event &e) {
            if (e.kind == beckon::EventKind::invitation_accepted) {
                say("alice", e.user_id + " accepted " + e.invitation_id + ": '" + e.extended_data + "'");
                answer.set_value(e.user_id);
            }
        });

        alice.login("alice").get();
        bob.login("bob").get();
        say("alice", "logged in");
        say("bob", "logged in");

        beckon::InvitationOptions options;
        options.timeout = 30s;
        options.extended_data = "{\"call\":\"video\"}";
        options.notification = beckon::Notification{"Incoming call", "alice is calling", "", ""};
        // Callback style: it runs on alice's dispatcher, in order with her events.
        alice.send_invitation({"bob"}, options, [](beckon::Result<beckon::SendResult> sent) {
            say("alice", sent ? "invited bob: invitation " + sent->invitation_id
                              : std::string("send failed: ") + sent.error().what());
        });

        std::future<std::string> heard = answer.get_future();
        if (heard.wait_for(10s) != std::future_status::ready) {
            std::fprintf(stderr, "no answer within 10 s\n");
            return 1;
        }
        say("alice", "heard from " + heard.get());

        alice.logout().get();
        bob.logout().get();
        std::printf("\n--- done ---\n");
        return 0;
    } catch (const beckon::Error &e) {
        std::fprintf(stderr, "beckon error: %s\n", e.what());
        return 1;
    }
}
