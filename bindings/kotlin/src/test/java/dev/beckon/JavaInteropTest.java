package dev.beckon;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The binding as Java code sees it: constructors, futures, lambdas, exceptions. */
class JavaInteropTest {

    private static final long WAIT = 10;

    private static String hub(String label) {
        return "memory://kt-java-" + label + "-" + ProcessHandle.current().pid() + "-" + System.nanoTime();
    }

    @Test
    void demoFlowFromJava() throws Exception {
        String hub = hub("demo");
        assertEquals(Beckon.BINDING_ABI_VERSION, Beckon.getAbiVersion());
        assertTrue(Beckon.isAbiCompatible(Beckon.getAbiVersion()));
        assertTrue(Beckon.isAbiCompatible((2 << 16) | 4, Beckon.BINDING_ABI_VERSION));
        assertFalse(Beckon.isAbiCompatible((2 << 16) | 2));
        assertEquals("2.3", Beckon.abiVersionText(Beckon.getAbiVersion()));
        try (BeckonClient alice = new BeckonClient(hub);
             BeckonClient bob = new BeckonClient(new ClientConfig(hub).withDeviceId("bobs-phone"))) {
            CompletableFuture<BeckonEvent.InvitationAccepted> heard = new CompletableFuture<>();
            alice.setEventListener(event -> {
                if (event instanceof BeckonEvent.InvitationAccepted accepted) {
                    heard.complete(accepted);
                }
            });
            bob.setEventListener(event -> {
                if (event instanceof BeckonEvent.InvitationReceived ring) {
                    bob.acceptInvitation(ring.getInvitationId(), "on my way");
                }
            });
            assertEquals("bobs-phone", bob.getDeviceId());
            assertEquals(ConnectionState.DISCONNECTED, bob.getConnectionState());
            assertEquals(null, bob.getUserId());
            alice.login("alice").get(WAIT, TimeUnit.SECONDS);
            bob.login("bob", null).get(WAIT, TimeUnit.SECONDS);
            ClientInfo info = bob.info();
            assertEquals(ConnectionState.CONNECTED, info.getConnectionState());
            assertEquals("bob", info.getUserId());
            assertEquals("bobs-phone", info.getDeviceId());
            assertEquals("alice", alice.getUserId());

            SendResult sent = alice.sendInvitation(List.of("bob"), 30, "{}", new Notification("Call"))
                    .get(WAIT, TimeUnit.SECONDS);
            assertTrue(sent.getInvitationId().length() > 0);
            BeckonEvent.InvitationAccepted accepted = heard.get(WAIT, TimeUnit.SECONDS);
            assertEquals("bob", accepted.getInvitee());
            assertEquals("on my way", accepted.getExtendedData());
            assertEquals(EventKind.INVITATION_ACCEPTED, accepted.getKind());
        }
    }

    @Test
    void errorsAreTypedCausesOfTheFuture() throws Exception {
        try (BeckonClient client = new BeckonClient(hub("errors"))) {
            ExecutionException e = assertThrows(ExecutionException.class,
                    () -> client.sendInvitation(List.of("bob"), 30).get(WAIT, TimeUnit.SECONDS));
            NotLoggedInException cause = assertInstanceOf(NotLoggedInException.class, e.getCause());
            assertEquals(ErrorCode.NOT_LOGGED_IN, cause.getCode());
            assertInstanceOf(BeckonException.class, cause);

            // Java can pass null where Kotlin does not allow it: refused before any C call.
            assertThrows(IllegalArgumentException.class, () -> client.login(null));
            assertThrows(IllegalArgumentException.class, () -> client.sendInvitation(null, 30));
        }
    }

    @Test
    void historyFromJava() throws Exception {
        String hub = hub("history");
        try (BeckonClient alice = new BeckonClient(hub); BeckonClient bob = new BeckonClient(hub)) {
            ExecutionException notYet = assertThrows(ExecutionException.class,
                    () -> alice.queryInvitations().get(WAIT, TimeUnit.SECONDS));
            assertInstanceOf(NotLoggedInException.class, notYet.getCause());
            alice.login("alice").get(WAIT, TimeUnit.SECONDS);
            bob.login("bob").get(WAIT, TimeUnit.SECONDS);
            for (int i = 0; i < 2; i++) {
                SendResult sent = alice.sendInvitation(List.of("bob"), 30).get(WAIT, TimeUnit.SECONDS);
                bob.refuseInvitation(sent.getInvitationId()).get(WAIT, TimeUnit.SECONDS);
            }
            // The overloads: (), (role), (role, sinceMs), (role, sinceMs, untilMs), (..., limit), (..., cursor).
            assertEquals(2, alice.queryInvitations().get(WAIT, TimeUnit.SECONDS).getInvitations().size());
            assertEquals(0, alice.queryInvitations(HistoryRole.RECEIVED).get(WAIT, TimeUnit.SECONDS).getInvitations().size());
            InvitationPage first = alice.queryInvitations(HistoryRole.SENT, 0, 0, 1).get(WAIT, TimeUnit.SECONDS);
            assertEquals(1, first.getInvitations().size());
            InvitationPage last = alice.queryInvitations(HistoryRole.SENT, 0, 0, 1, first.getNextCursor())
                    .get(WAIT, TimeUnit.SECONDS);
            assertEquals(null, last.getNextCursor());
            InvitationSummary summary = last.getInvitations().get(0);
            assertEquals("alice", summary.getInviter());
            assertEquals(List.of(new InviteeStatus("bob", InviteeState.REJECTED)), summary.getInvitees());
            assertFalse(summary.getSentByServer());
            assertTrue(summary.getCreatedMs() <= summary.getEndedMs());
            assertEquals(1, HistoryRole.SENT.getValue());
            ExecutionException bad = assertThrows(ExecutionException.class,
                    () -> alice.queryInvitations(HistoryRole.ANY, 0, 0, 101).get(WAIT, TimeUnit.SECONDS));
            assertInstanceOf(InvalidArgumentException.class, bad.getCause());
        }
    }

    @Test
    void pollModeFromJava() throws Exception {
        try (BeckonClient client = new BeckonClient(
                new ClientConfig(hub("poll")).withDispatchMode(DispatchMode.POLL).withRequestTimeoutMillis(5_000))) {
            CompletableFuture<Void> login = client.login("alice");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT);
            while (!login.isDone() && System.nanoTime() < deadline) {
                client.poll(50);
            }
            login.get(0, TimeUnit.SECONDS);
        }
        Beckon.Diagnostics d = Beckon.diagnostics();
        assertEquals(0L, d.getUnmatchedCallbacks());
    }

    @Test
    void poolModeFromJava() throws Exception {
        assertEquals(2, DispatchMode.POOL.getValue());
        String hub = hub("pool");
        try (BeckonClient alice = new BeckonClient(new ClientConfig(hub).withDispatchMode(DispatchMode.POOL));
             BeckonClient bob = new BeckonClient(new ClientConfig(hub, null, DispatchMode.POOL))) {
            CompletableFuture<String> heard = new CompletableFuture<>();
            alice.setEventListener(event -> {
                if (event instanceof BeckonEvent.InvitationAccepted accepted) {
                    heard.complete(accepted.getInvitee() + " on " + Thread.currentThread().getName());
                }
            });
            bob.setEventListener(event -> {
                if (event instanceof BeckonEvent.InvitationReceived ring) {
                    bob.acceptInvitation(ring.getInvitationId());
                }
            });
            alice.login("alice").get(WAIT, TimeUnit.SECONDS);
            bob.login("bob").get(WAIT, TimeUnit.SECONDS);
            alice.sendInvitation(List.of("bob"), 30).get(WAIT, TimeUnit.SECONDS);
            assertEquals("bob on beckon-dispatcher", heard.get(WAIT, TimeUnit.SECONDS));
            InvalidArgumentException e = assertThrows(InvalidArgumentException.class, () -> bob.poll(0));
            assertTrue(e.getMessage().contains("POOL"), e.getMessage());
        }
    }

    @Test
    void abi21OptionsAndLoggingFromJava() throws Exception {
        String hub = hub("abi21");
        java.util.concurrent.atomic.AtomicInteger records = new java.util.concurrent.atomic.AtomicInteger();
        Beckon.setLogHandler(LogLevel.INFO, (level, tag, subTag, message) -> records.incrementAndGet());
        try (BeckonClient alice = new BeckonClient(hub); BeckonClient bob = new BeckonClient(hub)) {
            CompletableFuture<String> ring = new CompletableFuture<>();
            bob.setEventListener(event -> {
                if (event instanceof BeckonEvent.InvitationReceived received) {
                    ring.complete(received.getInvitationId());
                }
            });
            alice.login("alice").get(WAIT, TimeUnit.SECONDS);
            bob.login("bob").get(WAIT, TimeUnit.SECONDS);
            // The new trailing parameter: requestTimeoutMillis (0: the client's).
            SendResult sent = alice.sendInvitation(List.of("bob", "carol"), 30, "", null, false, 5_000)
                    .get(WAIT, TimeUnit.SECONDS);
            assertEquals(sent.getInvitationId(), ring.get(WAIT, TimeUnit.SECONDS));
            CancelResult cancelled = alice.cancelInvitation(sent.getInvitationId(), List.of("carol"), null, 5_000)
                    .get(WAIT, TimeUnit.SECONDS);
            assertTrue(cancelled.getErrorInvitees().isEmpty());
            bob.acceptInvitation(sent.getInvitationId(), "yes", 5_000).get(WAIT, TimeUnit.SECONDS);
            ExecutionException e = assertThrows(ExecutionException.class,
                    () -> bob.refuseInvitation(sent.getInvitationId(), null, -1).get(WAIT, TimeUnit.SECONDS));
            assertInstanceOf(InvalidArgumentException.class, e.getCause());
            // Queued records arrive on the library's log thread; those still queued
            // when the handler is replaced are dropped.
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT);
            while (records.get() == 0 && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
        } finally {
            // Direct delivery, then off: both return once the replaced handler is done.
            Beckon.setLogHandler(LogLevel.ERROR, (level, tag, subTag, message) -> { }, LogDelivery.DIRECT);
            Beckon.setLogHandler(LogLevel.OFF, null);
        }
        assertTrue(records.get() > 0);
        assertEquals(ErrorCode.WOULD_DEADLOCK, new WouldDeadlockException("x").getCode());
    }
}
