// Package rigtest checks the end-to-end rig as a whole against a real API
// server and Prometheus: model servers behind the data-plane stand-in, driven
// by the load generator, routed by VirtualService weights that change while
// traffic flows. It holds tests only.
package rigtest
