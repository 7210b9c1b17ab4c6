// Package ctltest holds the test helpers shared by the controller packages'
// tests: polling waits, pod and Service builders, a fake clientset that
// names generateName objects like the API server, simulated pod status
// (there is no node agent in these tests) and the start/stop plumbing of a
// controller under test.
//
// It is imported only from _test.go files; production code must not depend
// on it.
package ctltest
