package kfake_test

// millrace's test of its patch to SASL authentication (see README.md):
// refused credentials get Kafka's answer, then the connection closes.

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/millrace/millrace/internal/kfake"
)

func TestSASL_refused_credentials_get_SASL_AUTHENTICATION_FAILED_and_the_connection_closes(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "alice", "secret"), kfake.Superuser("SCRAM-SHA-512", "alice", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	for _, tc := range []struct {
		name, mechanism, auth, message string
	}{
		{"PLAIN wrong password", "PLAIN", "\x00alice\x00wrong", "Authentication failed: Invalid username or password"},
		{"PLAIN unknown user", "PLAIN", "\x00mallory\x00secret", "Authentication failed: Invalid username or password"},
		{"SCRAM unknown user", "SCRAM-SHA-512", "n,,n=mallory,r=abcdefgh",
			"Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", c.ListenAddrs()[0])
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			m := &member{t: t, name: "sasl", conn: conn}
			hs := kmsg.NewPtrSASLHandshakeRequest()
			hs.Version = 1
			hs.Mechanism = tc.mechanism
			m.send(hs)
			hsResp := hs.ResponseKind().(*kmsg.SASLHandshakeResponse)
			hsResp.Version = 1
			if err := m.recv(hsResp, 5*time.Second); err != nil || hsResp.ErrorCode != 0 {
				t.Fatalf("handshake: %v, error code %d", err, hsResp.ErrorCode)
			}
			auth := kmsg.NewPtrSASLAuthenticateRequest()
			auth.Version = 1
			auth.SASLAuthBytes = []byte(tc.auth)
			m.send(auth)
			resp := auth.ResponseKind().(*kmsg.SASLAuthenticateResponse)
			resp.Version = 1
			if err := m.recv(resp, 5*time.Second); err != nil {
				t.Fatalf("authenticate: no response: %v", err)
			}
			if resp.ErrorCode != kerr.SaslAuthenticationFailed.Code || resp.ErrorMessage == nil || *resp.ErrorMessage != tc.message {
				t.Fatalf("authenticate: error %v, message %v; want SASL_AUTHENTICATION_FAILED, %q",
					kerr.ErrorForCode(resp.ErrorCode), resp.ErrorMessage, tc.message)
			}
			if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
				t.Fatalf("after the refusal, read: %v; want EOF (the broker closes the connection)", err)
			}
		})
	}
}
