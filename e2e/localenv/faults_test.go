package localenv_test

import (
	"context"
	"net/http"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
)

// TestFaultInjection checks the fault methods on an API-server-only
// environment: a restarted API server answers again at the same address with
// the same data and credentials; a paused etcd blocks writes until resumed;
// Stop cleans up even with etcd paused.
func TestFaultInjection(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a local Kubernetes environment")
	}
	ctx := context.Background()
	env, err := localenv.Start(ctx, localenv.APIServerOnly())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	cms := env.Client.CoreV1().ConfigMaps("default")
	create := func(ctx context.Context, name string) error {
		_, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		return err
	}
	if err := create(ctx, "before-restart"); err != nil {
		t.Fatal(err)
	}

	t.Run("RestartAPIServer: down, then answers again with its data", func(t *testing.T) {
		oldPid := env.Pids()[localenv.KubeAPIServer]
		const down = 2 * time.Second
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- env.RestartAPIServer(ctx, down) }()
		sawDown := false
		for !sawDown && time.Since(start) < down {
			sawDown = !readyz(env)
			time.Sleep(50 * time.Millisecond)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		t.Logf("API server back after %s (down %s)", time.Since(start).Round(time.Millisecond), down)
		if !sawDown {
			t.Error("the API server kept answering while it was meant to be down")
		}
		if pid := env.Pids()[localenv.KubeAPIServer]; pid == oldPid || syscall.Kill(oldPid, 0) == nil {
			t.Errorf("pid %d after restart, old %d: want a new process and the old one gone", pid, oldPid)
		}
		if _, err := cms.Get(ctx, "before-restart", metav1.GetOptions{}); err != nil {
			t.Errorf("object written before the restart: %v", err)
		}
		if err := create(ctx, "after-restart"); err != nil {
			t.Errorf("write after the restart with the old client and token: %v", err)
		}
	})

	t.Run("PauseEtcd: writes block until ResumeEtcd", func(t *testing.T) {
		if err := env.PauseEtcd(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.ResumeEtcd() })
		short, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := create(short, "during-pause")
		cancel()
		if err == nil {
			t.Fatal("a write succeeded while etcd was paused")
		}
		t.Logf("write while paused: %v", err)
		// Served from the API server's watch cache, without etcd.
		if _, err := cms.List(ctx, metav1.ListOptions{ResourceVersion: "0"}); err != nil {
			t.Errorf("cached list while etcd was paused: %v", err)
		}
		if err := env.ResumeEtcd(); err != nil {
			t.Fatal(err)
		}
		resumed := time.Now()
		var last error
		for time.Since(resumed) < timeout() {
			if last = create(ctx, "after-pause"); last == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if last != nil {
			t.Fatalf("write after ResumeEtcd: %v", last)
		}
		t.Logf("first write after resume took %s", time.Since(resumed).Round(time.Millisecond))
	})

	t.Run("Stop with etcd paused leaves nothing behind", func(t *testing.T) {
		if err := env.PauseEtcd(); err != nil {
			t.Fatal(err)
		}
		pids := env.Pids()
		if err := env.Stop(); err != nil {
			t.Fatal(err)
		}
		for name, pid := range pids {
			if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
				t.Errorf("%s (pid %d) survived Stop: kill(0) = %v", name, pid, err)
			}
		}
	})
}

// readyz reports whether the API server answers /readyz with 200.
func readyz(env *localenv.Env) bool {
	tr, err := rest.TransportFor(env.Config)
	if err != nil {
		return false
	}
	c := &http.Client{Transport: tr, Timeout: time.Second}
	resp, err := c.Get(env.APIServerURL + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
