package dataplane

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/go-logr/logr"
	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	istionetv1beta1 "istio.io/client-go/pkg/apis/networking/v1beta1"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	istioinformers "istio.io/client-go/pkg/informers/externalversions"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// WatchConfig says what Watch reads.
type WatchConfig struct {
	// Namespace limits the watch to one namespace; all when empty.
	Namespace string
	// APIVersion of networking.istio.io to read: "v1" (default) or
	// "v1beta1" for clusters whose CRDs do not serve v1 yet. Every served
	// version shows the same objects, so one is enough.
	APIVersion string
	// SkipGatewayAPI leaves HTTPRoutes and GRPCRoutes unwatched. Without
	// it Watch follows those of gateway.networking.k8s.io/v1 that the API
	// server serves when Watch starts (a kind installed later is not seen).
	SkipGatewayAPI bool
}

// Watch starts informers for VirtualServices, DestinationRules, Services,
// Pods, and the Gateway API's HTTPRoutes and GRPCRoutes (see
// WatchConfig.SkipGatewayAPI), waits until they have synced, installs the
// first Table and returns. The informers keep rebuilding the Table on every
// change until ctx ends.
func (p *Proxy) Watch(ctx context.Context, rc *rest.Config, wc WatchConfig) error {
	log := logr.FromContextOrDiscard(ctx).WithName("dataplane")
	if wc.APIVersion == "" {
		wc.APIVersion = "v1"
	}
	if wc.APIVersion != "v1" && wc.APIVersion != "v1beta1" {
		return fmt.Errorf("dataplane watch: APIVersion %q: use \"v1\" or \"v1beta1\"", wc.APIVersion)
	}
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("dataplane watch: kubernetes client: %w", err)
	}
	ic, err := istioclient.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("dataplane watch: istio client: %w", err)
	}
	kf := informers.NewSharedInformerFactoryWithOptions(kc, 0, informers.WithNamespace(wc.Namespace))
	inf := istioinformers.NewSharedInformerFactoryWithOptions(ic, 0, istioinformers.WithNamespace(wc.Namespace))
	svcs, pods := kf.Core().V1().Services(), kf.Core().V1().Pods()

	changed := make(chan struct{}, 1)
	notify := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { signal(changed) },
		UpdateFunc: func(any, any) { signal(changed) },
		DeleteFunc: func(any) { signal(changed) },
	}
	var list func() ([]VirtualService, []DestinationRule, error)
	var informersToAdd []cache.SharedIndexInformer
	switch wc.APIVersion {
	case "v1":
		vsi, dri := inf.Networking().V1().VirtualServices(), inf.Networking().V1().DestinationRules()
		informersToAdd = append(informersToAdd, vsi.Informer(), dri.Informer())
		list = func() ([]VirtualService, []DestinationRule, error) {
			vl, err := vsi.Lister().List(labels.Everything())
			if err != nil {
				return nil, nil, err
			}
			dl, err := dri.Lister().List(labels.Everything())
			if err != nil {
				return nil, nil, err
			}
			return fromV1VS(vl), fromV1DR(dl), nil
		}
	case "v1beta1":
		vsi, dri := inf.Networking().V1beta1().VirtualServices(), inf.Networking().V1beta1().DestinationRules()
		informersToAdd = append(informersToAdd, vsi.Informer(), dri.Informer())
		list = func() ([]VirtualService, []DestinationRule, error) {
			vl, err := vsi.Lister().List(labels.Everything())
			if err != nil {
				return nil, nil, err
			}
			dl, err := dri.Lister().List(labels.Everything())
			if err != nil {
				return nil, nil, err
			}
			return fromV1beta1VS(vl), fromV1beta1DR(dl), nil
		}
	}
	informersToAdd = append(informersToAdd, svcs.Informer(), pods.Informer())
	gw := &gatewayWatch{}
	if !wc.SkipGatewayAPI {
		if gw, err = newGatewayWatch(rc, kc.Discovery(), wc.Namespace); err != nil {
			return err
		}
		informersToAdd = append(informersToAdd, gw.informers...)
		if len(gw.missing) > 0 {
			log.Info("Gateway API routes not served; not routed by", "kinds", gw.missing)
		}
	}
	for _, i := range informersToAdd {
		if _, err := i.AddEventHandler(notify); err != nil {
			return fmt.Errorf("dataplane watch: add event handler: %w", err)
		}
	}
	kf.Start(ctx.Done())
	inf.Start(ctx.Done())
	if gw.factory != nil {
		gw.factory.Start(ctx.Done())
	}
	syncCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	synced := make([]cache.InformerSynced, 0, len(informersToAdd))
	for _, i := range informersToAdd {
		synced = append(synced, i.HasSynced)
	}
	if !cache.WaitForCacheSync(syncCtx.Done(), synced...) {
		return fmt.Errorf("dataplane watch: caches did not sync within a minute (are the Istio CRDs installed and served at networking.istio.io/%s?)", wc.APIVersion)
	}

	var lastProblems []string
	rebuild := func() {
		vss, drs, err := list()
		if err != nil {
			log.Error(err, "list routing objects")
			return
		}
		hrs, grs, err := gw.list()
		if err != nil {
			log.Error(err, "list Gateway API routes")
			return
		}
		sl, _ := svcs.Lister().List(labels.Everything())
		pl, _ := pods.Lister().List(labels.Everything())
		t := Build(Snapshot{VirtualServices: vss, DestinationRules: drs, Services: sl, Pods: pl, HTTPRoutes: hrs, GRPCRoutes: grs})
		p.SetTable(t)
		if !slices.Equal(t.Problems, lastProblems) {
			for _, pr := range t.Problems {
				log.Info("routing problem", "problem", pr)
			}
			lastProblems = t.Problems
		}
	}
	rebuild()
	go func() {
		for {
			select {
			case <-ctx.Done():
				kf.Shutdown()
				inf.Shutdown()
				if gw.factory != nil {
					gw.factory.Shutdown()
				}
				return
			case <-changed:
				rebuild()
			}
		}
	}()
	return nil
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func fromV1VS(in []*istionetv1.VirtualService) []VirtualService {
	out := make([]VirtualService, 0, len(in))
	for _, o := range in {
		out = append(out, VirtualService{Namespace: o.Namespace, Name: o.Name, ResourceVersion: o.ResourceVersion, Created: o.CreationTimestamp.Time, Spec: &o.Spec})
	}
	return out
}

func fromV1DR(in []*istionetv1.DestinationRule) []DestinationRule {
	out := make([]DestinationRule, 0, len(in))
	for _, o := range in {
		out = append(out, DestinationRule{Namespace: o.Namespace, Name: o.Name, Created: o.CreationTimestamp.Time, Spec: &o.Spec})
	}
	return out
}

func fromV1beta1VS(in []*istionetv1beta1.VirtualService) []VirtualService {
	out := make([]VirtualService, 0, len(in))
	for _, o := range in {
		out = append(out, VirtualService{Namespace: o.Namespace, Name: o.Name, ResourceVersion: o.ResourceVersion, Created: o.CreationTimestamp.Time, Spec: &o.Spec})
	}
	return out
}

func fromV1beta1DR(in []*istionetv1beta1.DestinationRule) []DestinationRule {
	out := make([]DestinationRule, 0, len(in))
	for _, o := range in {
		out = append(out, DestinationRule{Namespace: o.Namespace, Name: o.Name, Created: o.CreationTimestamp.Time, Spec: &o.Spec})
	}
	return out
}
