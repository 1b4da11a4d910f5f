package notify

import (
	"os"
	"testing"

	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
)

// env is a real kube-apiserver with Fulcrum's CRDs, for the tests that
// read Secrets and write Notifiers' status through it; nil under -short.
var env *localenv.Env

func TestMain(m *testing.M) { os.Exit(localenv.Main(m, localenv.APIServerOnly(), &env)) }
