// Package testkit is how millrace pipelines and filters are tested, by
// millrace itself and by its users: brokers to run against (the embedded
// broker, and a real Apache Kafka started from Maven Central jars), running
// a pipelines file in-process, and producing and reading records.
// testkit/prometheus runs a real Prometheus server and promtool, to check
// what millrace exports and the dashboards and alerts that read it.
//
// Tests that want both brokers call [Backends] and run as a table over
// them; a package using real Kafka calls [Main] from its TestMain so the
// broker is stopped when its tests end.
//
// Brokers that want TLS and SCRAM-SHA-512 (SASL_SSL) come from
// [SecureBackends] ([SecureEmbedded], [SecureRealKafka]); their
// Backend.Security is what every helper here, and [Run], connects with.
// [Backend.WithPassword], [Backend.WithCAFile] with a [ThrowawayCA], and
// [Backend.WithSecurity] make clients that must be turned away.
package testkit
