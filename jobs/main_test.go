package jobs_test

import (
	"testing"

	"github.com/millrace/millrace/testkit"
)

// TestMain stops the real Kafka broker the tests of this package shared.
func TestMain(m *testing.M) { testkit.Main(m) }
