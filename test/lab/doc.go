// Package lab holds end-to-end tests that build a network-namespace lab
// (test/netlab) of devices made of real programs and run Patchgate against
// it. The tests need root and the Debian packages named in each test; they
// skip with a message otherwise, and under -short.
package lab
