// Package stages holds the steps that Argo runs for backflow: dump, verify,
// restore and rotate. Each is a function of its configuration that streams
// from a source through the pipeline package into a storage backend, or
// back; the backflow binary wires them to subcommands, so that the Workflow
// steps, the tests and a person at a shell run the same code.
package stages
