package connections

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/config"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/fulcrum-ml/fulcrum/analysis/provider"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/promserver/promauth"
	"github.com/fulcrum-ml/fulcrum/manifests"
)

const ns = "team-a"

// recorder is a Prometheus stand-in that answers every query with one
// sample and remembers what each request carried.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Clone(context.Background()))
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}`))
}

func (r *recorder) last(t *testing.T) *http.Request {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqs) == 0 {
		t.Fatal("no request reached the server")
	}
	return r.reqs[len(r.reqs)-1]
}

func secret(name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name)}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func ref(name, key string) *v1alpha1.SecretKeyRef {
	return &v1alpha1.SecretKeyRef{Name: name, Key: key}
}

func query(t *testing.T, p provider.Provider) error {
	t.Helper()
	_, err := p.Query(context.Background(), "vector(1)", time.Now())
	return err
}

// TestControllerSettingsStayWithTheControllersPrometheus: the controller's
// token, tenant header and client certificate reach its own Prometheus and
// nothing else; a template gets only what its Secret gives.
func TestControllerSettingsStayWithTheControllersPrometheus(t *testing.T) {
	pki, err := promauth.NewPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	global, other := &recorder{}, &recorder{}
	globalSrv := httptest.NewServer(global)
	defer globalSrv.Close()
	// other serves TLS with the test CA's certificate and asks for (but
	// does not require) a client certificate, so a leaked one would show.
	otherSrv := httptest.NewUnstartedServer(other)
	cert, err := tls.LoadX509KeyPair(pki.ServerCertFile, pki.ServerKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pki.CAPEM)
	otherSrv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert, ClientCAs: roots}
	otherSrv.StartTLS()
	defer otherSrv.Close()

	controller := config.DefaultHTTPClientConfig
	controller.Authorization = &config.Authorization{Type: "Bearer", Credentials: "controller-token"}
	controller.HTTPHeaders = &config.Headers{Headers: map[string]config.Header{"X-Scope-OrgID": {Values: []string{"platform"}}}}
	controller.TLSConfig = config.TLSConfig{CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile, CAFile: pki.CAFile}

	tenant := fmt.Sprintf("basic_auth: {username: team-a, password: pw}\nhttp_headers:\n  X-Scope-OrgID: {values: [team-a]}\ntls_config:\n  ca: %q\n", pki.CAPEM)
	c := fake.NewClientBuilder().WithObjects(secret("tenant", map[string]string{"config.yaml": tenant})).Build()
	plain := &recorder{}
	plainSrv := httptest.NewServer(plain)
	defer plainSrv.Close()
	pool, err := New(Config{Global: provider.PrometheusConfig{Address: globalSrv.URL, HTTP: controller}, Secrets: c,
		AllowedAddresses: []string{otherSrv.URL, plainSrv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		spec   *v1alpha1.Provider
		server *recorder
		auth   string // the Authorization header wanted
		orgID  string // the X-Scope-OrgID wanted
	}{
		{"built-in template", nil, global, "Bearer controller-token", "platform"},
		{"no address, no Secret", &v1alpha1.Provider{Type: v1alpha1.ProviderPrometheus}, global, "Bearer controller-token", "platform"},
		{"the controller's address with the template's Secret", &v1alpha1.Provider{HTTPClientConfigSecretRef: ref("tenant", "config.yaml")}, global, "Basic dGVhbS1hOnB3", "team-a"},
		{"own address with the template's Secret", &v1alpha1.Provider{Address: otherSrv.URL, HTTPClientConfigSecretRef: ref("tenant", "config.yaml")}, other, "Basic dGVhbS1hOnB3", "team-a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := pool.For(context.Background(), Template{Namespace: ns, Provider: tt.spec})
			if err != nil {
				t.Fatal(err)
			}
			if err := query(t, p); err != nil {
				t.Fatal(err)
			}
			r := tt.server.last(t)
			if got := r.Header.Get("Authorization"); got != tt.auth {
				t.Errorf("Authorization %q, want %q", got, tt.auth)
			}
			if got := r.Header.Values("X-Scope-OrgID"); len(got) != 1 || got[0] != tt.orgID {
				t.Errorf("X-Scope-OrgID %q, want only %q", got, tt.orgID)
			}
			if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
				t.Errorf("the controller's client certificate reached %s", otherSrv.URL)
			}
		})
	}

	// An address without a Secret gets nothing at all: no token, no
	// header, and the system's CAs, which do not know the test CA.
	p, err := pool.For(context.Background(), Template{Namespace: ns, Provider: &v1alpha1.Provider{Address: otherSrv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if err := query(t, p); !errors.Is(err, provider.ErrUnreachable) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("own address without a Secret: %v; want the test CA untrusted", err)
	}
	p, _ = pool.For(context.Background(), Template{Namespace: ns, Provider: &v1alpha1.Provider{Address: plainSrv.URL}})
	if err := query(t, p); err != nil {
		t.Fatal(err)
	}
	if r := plain.last(t); r.Header.Get("Authorization") != "" || r.Header.Get("X-Scope-OrgID") != "" {
		t.Errorf("own address without a Secret got the controller's settings: %v", r.Header)
	}
}

func TestSecretProblemsAreExplained(t *testing.T) {
	objs := []client.Object{
		secret("empty", map[string]string{"config.yaml": ""}),
		secret("other-key", map[string]string{"http.yaml": "basic_auth: {username: u, password: p}"}),
		secret("unknown-field", map[string]string{"config.yaml": "basic_auth:\n  username: u\n  pasword: p\n"}),
		secret("files", map[string]string{"config.yaml": "authorization:\n  credentials_file: /var/run/secrets/kubernetes.io/serviceaccount/token\ntls_config: {cert_file: /etc/tls.crt, key_file: /etc/tls.key}\nhttp_headers:\n  X-Token: {files: [/etc/token]}\n"}),
		secret("two-auths", map[string]string{"config.yaml": "basic_auth: {username: u}\nauthorization: {credentials: t}\n"}),
		secret("type-error", map[string]string{"config.yaml": "basic_auth: hunter2-secret\n"}),
		secret("bad-ca", map[string]string{"config.yaml": "tls_config: {ca: not a certificate}\n"}),
	}
	c := fake.NewClientBuilder().WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if key.Name == "forbidden" {
				return apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, key.Name, errors.New("RBAC says no"))
			}
			return c.Get(ctx, key, obj, opts...)
		},
	}).Build()
	pool, err := New(Config{Global: provider.PrometheusConfig{Address: "http://127.0.0.1:9"}, Secrets: c})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, secret, key string
		want              []string
	}{
		{"missing Secret", "nope", "config.yaml", []string{"no such Secret", "create it"}},
		{"missing key", "other-key", "config.yaml", []string{"has no such key", "httpClientConfigSecretRef.key"}},
		{"empty value", "empty", "config.yaml", []string{"the value is empty"}},
		{"unknown field", "unknown-field", "config.yaml", []string{"line 3: field pasword not found", "basic_auth", "fix the value"}},
		{"files", "files", "config.yaml", []string{"authorization.credentials_file, tls_config.cert_file, tls_config.key_file, http_headers.X-Token.files name files", "inline"}},
		{"two auths", "two-auths", "config.yaml", []string{"at most one of basic_auth, oauth2 & authorization"}},
		{"forbidden", "forbidden", "config.yaml", []string{"forbidden", "get on secrets"}},
		{"type error hides the value", "type-error", "config.yaml", []string{"cannot unmarshal", "(value hidden)"}},
		{"bad CA", "bad-ca", "config.yaml", []string{"fix the settings in the Secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pool.For(context.Background(), Template{Namespace: ns, Provider: &v1alpha1.Provider{HTTPClientConfigSecretRef: ref(tt.secret, tt.key)}})
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			for _, w := range append([]string{"spec.provider.httpClientConfigSecretRef", ns + "/" + tt.secret, `key "` + tt.key + `"`}, tt.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			if strings.Contains(msg, "hunter2") || strings.Contains(msg, "plain") {
				t.Errorf("error shows the value or Go internals: %q", msg)
			}
		})
	}

	noReader, _ := New(Config{Global: provider.PrometheusConfig{Address: "http://127.0.0.1:9"}})
	if _, err := noReader.For(context.Background(), Template{Namespace: ns, Provider: &v1alpha1.Provider{HTTPClientConfigSecretRef: ref("x", "y")}}); err == nil {
		t.Error("a Secret reference without a Secret reader was accepted")
	}
	if _, err := pool.For(context.Background(), Template{Namespace: ns, Provider: &v1alpha1.Provider{Type: "datadog"}}); !errors.Is(err, provider.ErrUnknownProvider) {
		t.Errorf("unknown type: %v", err)
	}
}

func TestEditedSecretTakesEffectAfterTTL(t *testing.T) {
	gets := 0
	s := secret("tenant", map[string]string{"config.yaml": "basic_auth: {username: u, password: one}\n"})
	c := fake.NewClientBuilder().WithObjects(s).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			gets++
			return c.Get(ctx, key, obj, opts...)
		},
	}).Build()
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	pool, err := New(Config{Global: provider.PrometheusConfig{Address: "http://127.0.0.1:9"}, Secrets: c, Clock: clk, SecretTTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tpl := Template{Namespace: ns, Provider: &v1alpha1.Provider{HTTPClientConfigSecretRef: ref("tenant", "config.yaml")}}
	ctx := context.Background()
	p1, err := pool.For(ctx, tpl)
	if err != nil {
		t.Fatal(err)
	}
	// Within the TTL: the same client, and no second GET.
	if p, _ := pool.For(ctx, tpl); p != p1 || gets != 1 {
		t.Fatalf("within the TTL: same client %v, GETs %d", p == p1, gets)
	}
	// Given an edit of the Secret,
	if err := c.Get(ctx, client.ObjectKeyFromObject(s), s); err != nil {
		t.Fatal(err)
	}
	s.Data["config.yaml"] = []byte("basic_auth: {username: u, password: two}\n")
	if err := c.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	gets = 0
	// it is not read again before the TTL ends,
	clk.Step(9 * time.Second)
	if p, _ := pool.For(ctx, tpl); p != p1 || gets != 0 {
		t.Fatalf("before the TTL: same client %v, GETs %d", p == p1, gets)
	}
	// and after it a new client is built from the new version.
	clk.Step(2 * time.Second)
	p2, err := pool.For(ctx, tpl)
	if err != nil || p2 == p1 || gets != 1 {
		t.Fatalf("after the TTL: err %v, new client %v, GETs %d", err, p2 != p1, gets)
	}
	// A deleted Secret is an error after the next read, never the old client.
	if err := c.Delete(ctx, s); err != nil {
		t.Fatal(err)
	}
	clk.Step(11 * time.Second)
	if _, err := pool.For(ctx, tpl); err == nil || !strings.Contains(err.Error(), "no such Secret") {
		t.Fatalf("deleted Secret: %v", err)
	}
}

func TestCacheIsBounded(t *testing.T) {
	var allowed []string
	for i := range 10 {
		allowed = append(allowed, fmt.Sprintf("127.0.0.%d:9090", i+1))
	}
	pool, err := New(Config{Global: provider.PrometheusConfig{Address: "http://127.0.0.1:9"}, MaxClients: 3, AllowedAddresses: allowed})
	if err != nil {
		t.Fatal(err)
	}
	var first provider.Provider
	for i := range 10 {
		p, err := pool.For(context.Background(), Template{Namespace: ns, Provider: &v1alpha1.Provider{Address: fmt.Sprintf("http://127.0.0.%d:9090", i+1)}})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = p
		}
	}
	if pool.Len() != 3 {
		t.Errorf("%d clients cached, want the bound 3", pool.Len())
	}
	// The first was evicted: asking again builds a new one.
	if p, _ := pool.For(context.Background(), Template{Namespace: ns, Provider: &v1alpha1.Provider{Address: "http://127.0.0.1:9090"}}); p == first {
		t.Error("an evicted client was handed out again")
	}
}

// The shipped example's Secret holds settings the controller accepts.
func TestExampleSecretParses(t *testing.T) {
	objs, err := manifests.Objects("examples")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, o := range objs {
		if o.GetKind() != "Secret" || o.GetName() != "mimir-team-a" {
			continue
		}
		found = true
		value, _, _ := unstructured.NestedString(o.Object, "stringData", "http-client.yaml")
		cfg, err := ParseSecretConfig([]byte(value))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.BasicAuth == nil || cfg.HTTPHeaders == nil {
			t.Errorf("example settings %+v", cfg)
		}
	}
	if !found {
		t.Fatal("no Secret mimir-team-a in manifests/examples")
	}
}
