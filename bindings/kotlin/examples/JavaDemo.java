// The demo flow from Java, with CompletableFuture: alice invites bob on a
// memory:// hub, bob's device rings, bob accepts, alice hears it and lists
// her history.

import dev.beckon.Beckon;
import dev.beckon.BeckonClient;
import dev.beckon.BeckonEvent;
import dev.beckon.HistoryRole;
import dev.beckon.InvitationSummary;
import dev.beckon.SendResult;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

public class JavaDemo {
    public static void main(String[] args) throws Exception {
        System.out.printf("beckon %s (ABI %s) on memory://demo-java%n", Beckon.getVersion(),
                Beckon.abiVersionText(Beckon.getAbiVersion()));
        try (BeckonClient alice = new BeckonClient("memory://demo-java");
             BeckonClient bob = new BeckonClient("memory://demo-java")) {
            CompletableFuture<BeckonEvent.InvitationAccepted> heard = new CompletableFuture<>();
            CompletableFuture<Void> bobAccepted = new CompletableFuture<>();

            bob.setEventListener(event -> {
                if (event instanceof BeckonEvent.InvitationReceived ring) {
                    System.out.println("[bob  ] ringing: " + ring.getInviter() + " calls");
                    // Answering from the listener is fine: it runs on bob's dispatcher thread.
                    bob.acceptInvitation(ring.getInvitationId(), "see you")
                            .whenComplete((ok, error) -> {
                                System.out.println("[bob  ] accept: " + (error == null ? "ok" : error));
                                bobAccepted.complete(null);
                            });
                }
            });
            alice.setEventListener(event -> {
                if (event instanceof BeckonEvent.InvitationAccepted accepted) {
                    heard.complete(accepted);
                }
            });

            alice.login("alice").get(10, TimeUnit.SECONDS);
            bob.login("bob").get(10, TimeUnit.SECONDS);
            SendResult sent = alice.sendInvitation(List.of("bob"), 30, "{\"call\":\"audio\"}")
                    .get(10, TimeUnit.SECONDS);
            System.out.println("[alice] invitation " + sent.getInvitationId() + " sent");
            bobAccepted.get(10, TimeUnit.SECONDS);
            BeckonEvent.InvitationAccepted accepted = heard.get(10, TimeUnit.SECONDS);
            System.out.println("[alice] " + accepted.getInvitee() + " accepted: " + accepted.getExtendedData());

            // History (ABI 2.3): the invitation ended when its only invitee answered.
            for (InvitationSummary past : alice.queryInvitations(HistoryRole.SENT).get(10, TimeUnit.SECONDS).getInvitations()) {
                System.out.println("[alice] history: " + past.getInvitationId() + " to " + past.getInvitees());
            }
        }
        System.out.println("--- done ---");
    }
}
