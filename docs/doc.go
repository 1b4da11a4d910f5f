// Package docs holds Fulcrum's documentation (the Markdown files here and
// the README). It has no code of its own: its tests check the docs against
// the code, so they cannot drift apart.
//
//   - Every flag table (a table whose first column is "flag") names, in an
//     HTML comment right above it, the program it describes:
//     <!-- flags: ./cmd/fulcrum -->. The test builds that program and
//     compares each row's flag and default with the program's own help, and
//     checks that every flag of the program is in some table.
//   - Every route table (first column "method and path") is compared with
//     the admin API's router (chi.Walk), both ways, and every /api/v1 path
//     mentioned anywhere must be one the router serves.
//   - docs/install.md: the manifests and commands it gives are built, parsed,
//     dry-run on a real API server or run, as far as this machine allows.
package docs
