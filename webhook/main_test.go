package webhook_test

import (
	"os"
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
	"github.com/fulcrum-ml/fulcrum/webhook"
)

var env *localenv.Env

// Users of the integration tests: an ML engineer allowed to edit
// VirtualServices, and a token user named like Fulcrum's service account.
const alice = "alice"

func TestMain(m *testing.M) {
	// certwatcher logs through controller-runtime's global logger.
	ctrllog.SetLogger(logr.Discard())
	opts := localenv.APIServerOnly()
	opts.Users = []localenv.User{
		{Name: alice, Groups: []string{"ml-engineers"}},
		{Name: webhook.DefaultFulcrumUser, Groups: []string{"system:serviceaccounts"}},
	}
	os.Exit(localenv.Main(m, opts, &env))
}
