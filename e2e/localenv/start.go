package localenv

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/fulcrum-ml/fulcrum/e2e/promserver"
)

// start runs the components in dependency order, doing independent work
// (Prometheus, locating the Istio and Gateway API CRDs, the controllers, the
// CRDs and the node) concurrently because start-up time is paid by every
// test package.
func (e *Env) start(ctx context.Context, root string, bins *Binaries) error {
	t0 := time.Now()
	keys, err := newPKI()
	if err != nil {
		return err
	}
	if err := keys.write(e.Dir); err != nil {
		return err
	}
	e.CAData = keys.CAPEM
	users := []User{{Name: AdminUser, Token: e.AdminToken, Groups: []string{"system:masters"}}}
	for _, u := range e.opts.Users {
		if u.Token == "" {
			u.Token = randomToken()
		}
		users = append(users, u)
	}
	e.Users = users
	tokens, err := tokenFile(users)
	if err != nil {
		return fmt.Errorf("options: %w", err)
	}
	if err := os.WriteFile(filepath.Join(e.Dir, "tokens.csv"), []byte(tokens), 0o600); err != nil {
		return fmt.Errorf("write token file: %w", err)
	}
	ports, err := FreePorts(5)
	if err != nil {
		return err
	}
	etcdPort, peerPort, apiPort, kcmPort, schedPort := ports[0], ports[1], ports[2], ports[3], ports[4]
	e.APIServerURL = "https://127.0.0.1:" + strconv.Itoa(apiPort)
	e.Kubeconfig = filepath.Join(e.Dir, "kubeconfig")
	if err := os.WriteFile(e.Kubeconfig, []byte(kubeconfig(e.APIServerURL, e.CAData, AdminUser, e.AdminToken)), 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	e.Config = &rest.Config{
		Host:            e.APIServerURL,
		BearerToken:     e.AdminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: e.CAData},
		QPS:             100,
		Burst:           200,
	}
	if e.Client, err = kubernetes.NewForConfig(e.Config); err != nil {
		return fmt.Errorf("admin client: %w", err)
	}

	// Work that does not need the API server starts now.
	var bg errgroup.Group
	if !e.opts.SkipPrometheus {
		bg.Go(func() error { return e.startPrometheus(ctx) })
	}
	var istioCRDs string
	bg.Go(func() error {
		d, err := moduleDir(ctx, root, "istio.io/api")
		if err != nil {
			return fmt.Errorf("locate Istio CRDs: %w", err)
		}
		istioCRDs = filepath.Join(d, "kubernetes", "customresourcedefinitions.gen.yaml")
		return nil
	})
	var gatewayCRDs []string
	bg.Go(func() error {
		d, err := moduleDir(ctx, root, gatewayAPIModule)
		if err != nil {
			return fmt.Errorf("locate Gateway API CRDs: %w", err)
		}
		gatewayCRDs = gatewayAPICRDFiles(d)
		return nil
	})

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	etcd, err := e.run(Etcd, bins.Path(Etcd),
		"--data-dir="+filepath.Join(e.Dir, "etcd-data"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls=http://127.0.0.1:"+strconv.Itoa(peerPort),
		"--initial-advertise-peer-urls=http://127.0.0.1:"+strconv.Itoa(peerPort),
		"--initial-cluster=default=http://127.0.0.1:"+strconv.Itoa(peerPort),
		"--unsafe-no-fsync", "--log-level=warn")
	if err != nil {
		return err
	}
	if err := waitHTTP(ctx, etcd, etcdURL+"/health", nil, ""); err != nil {
		return err
	}
	api, err := e.run(KubeAPIServer, bins.Path(KubeAPIServer),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		// Loopback cannot be advertised in the kubernetes Endpoints; nothing
		// in this cluster dials the API server through that Service.
		"--endpoint-reconciler-type=none",
		"--secure-port="+strconv.Itoa(apiPort),
		"--cert-dir="+filepath.Join(e.Dir, "apiserver-certs"),
		"--tls-cert-file="+filepath.Join(e.Dir, "apiserver.crt"),
		"--tls-private-key-file="+filepath.Join(e.Dir, "apiserver.key"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+filepath.Join(e.Dir, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(e.Dir, "sa.key"),
		"--token-auth-file="+filepath.Join(e.Dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--allow-privileged=true",
	)
	if err != nil {
		return err
	}
	if err := waitHTTP(ctx, api, e.APIServerURL+"/readyz", e.CAData, e.AdminToken); err != nil {
		return err
	}
	e.opts.Logf("localenv: API server ready at %s after %s", e.APIServerURL, time.Since(t0).Round(time.Millisecond))

	var fg errgroup.Group
	kubeconfigFlags := []string{"--kubeconfig=" + e.Kubeconfig, "--authentication-kubeconfig=" + e.Kubeconfig,
		"--authorization-kubeconfig=" + e.Kubeconfig, "--leader-elect=false", "--bind-address=127.0.0.1"}
	if !e.opts.SkipControllerManager {
		controllers := "*,-serviceaccount-token"
		if e.opts.NoEndpointSlices {
			controllers += ",-endpointslice-controller,-endpointslice-mirroring-controller,-endpoints-controller"
		}
		p, err := e.run(KubeControllerManager, bins.Path(KubeControllerManager), append(kubeconfigFlags,
			"--secure-port="+strconv.Itoa(kcmPort),
			"--controllers="+controllers,
			"--service-account-private-key-file="+filepath.Join(e.Dir, "sa.key"),
			"--root-ca-file="+filepath.Join(e.Dir, "ca.crt"),
		)...)
		if err != nil {
			return err
		}
		fg.Go(func() error {
			return waitHTTP(ctx, p, "https://127.0.0.1:"+strconv.Itoa(kcmPort)+"/healthz", nil, "")
		})
	}
	if !e.opts.SkipScheduler {
		p, err := e.run(KubeScheduler, bins.Path(KubeScheduler), append(kubeconfigFlags,
			"--secure-port="+strconv.Itoa(schedPort))...)
		if err != nil {
			return err
		}
		fg.Go(func() error {
			return waitHTTP(ctx, p, "https://127.0.0.1:"+strconv.Itoa(schedPort)+"/healthz", nil, "")
		})
	}
	if !e.opts.SkipKwok {
		p, err := e.run(Kwok, bins.Path(Kwok),
			"--kubeconfig="+e.Kubeconfig,
			"--manage-all-nodes=true",
			"--cidr=10.200.0.0/16",
			"--node-ip=127.0.0.1",
			// Without it nobody renews the node's Lease, the node controller
			// marks it NotReady after ~40s and every pod turns unready.
			"--node-lease-duration-seconds=40",
			"-c", bins.KwokStages)
		if err != nil {
			return err
		}
		e.NodeName = e.opts.NodeName
		fg.Go(func() error { return e.addNode(ctx, p, e.NodeName) })
	}
	if err := bg.Wait(); err != nil {
		return err
	}
	fg.Go(func() error {
		var edit func(*apiextensionsv1.CustomResourceDefinition)
		if len(e.opts.IstioVersions) > 0 {
			edit = servedIstioVersions(e.opts.IstioVersions)
		}
		files := append([]string{istioCRDs, filepath.Join(root, "manifests", "crd", "*.yaml")}, gatewayCRDs...)
		return installEditedCRDs(ctx, e.Config, edit, files...)
	})
	if err := fg.Wait(); err != nil {
		return err
	}
	e.opts.Logf("localenv: environment ready in %s (folder %s)", time.Since(t0).Round(time.Millisecond), e.Dir)
	return nil
}

func (e *Env) run(name, bin string, args ...string) (*process, error) {
	p, err := startProcess(e.Dir, name, bin, args...)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	return p, nil
}

func (e *Env) startPrometheus(ctx context.Context) error {
	cfg := e.opts.Prometheus
	cfg.Dir = filepath.Join(e.Dir, "prometheus")
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("create prometheus folder: %w", err)
	}
	f, err := os.Create(e.LogPath("prometheus"))
	if err != nil {
		return fmt.Errorf("open prometheus log: %w", err)
	}
	defer f.Close() // the child keeps its own descriptor
	cfg.Log = f
	s, err := promserver.Start(ctx, cfg)
	if err != nil {
		return fmt.Errorf("%w (log %s):\n%s", err, e.LogPath("prometheus"), logTail(e.LogPath("prometheus"), 20))
	}
	e.Prometheus, e.PrometheusURL = s, s.URL
	return nil
}

// waitHTTP polls url until it answers 200, the process exits, or ctx ends.
// caPEM nil skips verification (the controllers' self-signed health ports).
func waitHTTP(ctx context.Context, p *process, url string, caPEM []byte, token string) error {
	tlsCfg := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // loopback health checks of self-signed components
	if caPEM != nil {
		cfg := &rest.Config{TLSClientConfig: rest.TLSClientConfig{CAData: caPEM}}
		var err error
		if tlsCfg, err = rest.TLSConfigFor(cfg); err != nil {
			return fmt.Errorf("tls config: %w", err)
		}
	}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	defer client.CloseIdleConnections()
	var last string
	for {
		if err := p.exited(); err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("health request: %w", err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not healthy at %s (last: %s); see %s:\n%s", p.name, url, last, p.log, logTail(p.log, 25))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// FreePorts asks the kernel for n distinct free loopback ports.
func FreePorts(n int) ([]int, error) {
	seen := map[int]bool{}
	var out []int
	for len(out) < n {
		p, err := promserver.FreePort()
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}
