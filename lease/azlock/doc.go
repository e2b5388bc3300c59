// Package azlock is the election's lock on Azure Blob Storage: a
// lease.Lock kept in a blob lease, built on the blob-lease primitive of
// internal/azure (which owns the storage client, the error classification
// and Azure's lease bounds). Package lease itself links no Azure code; the
// node wires this backend in when lease.backend = "azblob".
//
// The lock is a blob lease: a mutex with a 15–60 s expiry that the storage
// service enforces. The holder record (node name, advertise URL, term,
// acquired-at) lives in the blob's metadata and is written with the lease ID
// right after each acquisition, so only the current holder can change it.
//
// # What is guaranteed
//
//   - Acquire, Renew, Release and Read keep lease.Lock's contract: each
//     acquisition (and each Adopt) increments the stored term by exactly
//     one, with a write conditional on the lease ID and on the blob being
//     unchanged since the term was read; a Lock never stays holder without
//     a recorded term (it releases the lease when the write fails).
//   - Every Lock has its own lease ID, random unless Options.LeaseID names
//     one (a GUID); LeaseID returns it. Two processes must never share one.
//   - Change, Adopt and ReleaseID are the steps of a handover to a named
//     node: the holder changes its lease to the successor's lease ID
//     (Change), the successor takes it over and records itself with the
//     next term (Adopt), and either can give up a lease held under a known
//     ID (ReleaseID). The lease never becomes free in between, so no third
//     node can take it.
//
// NewHistory keeps the election's history (package lease/history) in the
// blob "<blob>.history" beside the lease blob, written with conditional
// requests (ETag), never under the lease.
//
// # What is NOT guaranteed
//
//   - Change does not extend the lease: its expiry stays where the last
//     acquire or renew put it. Adopt acquires the lease again under its own
//     ID right after the change, so the adopter's lease lasts its own d
//     from the start of the Adopt call, whatever duration the previous
//     holder used (a renew would keep the previous holder's duration).
//   - Azure renews a lease for the duration it was acquired with; Renew's d
//     is checked against that, not sent.
//
// # Setting it up in Azure
//
//  1. A storage account (StorageV2; LRS is enough, the lease blob is 0
//     bytes) in the VMs' region:
//     az storage account create -n batonprod -g RG -l westeurope \
//     --sku Standard_LRS --kind StorageV2 --min-tls-version TLS1_2 \
//     --allow-blob-public-access false
//  2. A container for the lease. Create it up front: with the role assigned
//     on the container only, the nodes may not create it themselves (baton
//     creates the container when it is missing and it is allowed to, and
//     always creates the lease blob, "leader" by default):
//     az storage container create --account-name batonprod -n baton \
//     --auth-mode login
//  3. Each VM's managed identity (system-assigned, or a user-assigned one
//     whose client ID goes into client_id) gets the "Storage Blob Data
//     Contributor" role on that container:
//     az role assignment create --assignee-object-id <VM principal id> \
//     --assignee-principal-type ServicePrincipal \
//     --role "Storage Blob Data Contributor" \
//     --scope /subscriptions/SUB/resourceGroups/RG/providers/Microsoft.Storage/storageAccounts/batonprod/blobServices/default/containers/baton
//     Role assignments take a few minutes to apply; until then baton logs
//     "storage account rejected our credentials (403
//     AuthorizationPermissionMismatch): give this VM's identity the Storage
//     Blob Data Contributor role on container baton" and stays out of
//     candidacy.
//  4. baton.toml on every node:
//     [lease.azblob]
//     account_url = "https://batonprod.blob.core.windows.net"
//     container   = "baton"
//     blob        = "leader"
//     auth        = "managed-identity"   # "default" also finds it
//     Other clouds have other suffixes (Azure Government:
//     https://ACCOUNT.blob.core.usgovcloudapi.net). If the account has a
//     firewall, admit the VMs' subnet (service endpoint or private
//     endpoint). Shared keys, SAS tokens and connection strings also work
//     (auth = "shared-key", "sas", "connection-string"); give them from a
//     file or an environment variable, never inline. A SAS token needs
//     read, write, create and add permissions on the container.
//
// Every storage call is bounded: one try lasts at most the call timeout
// (2 s), a call makes at most three tries (transient errors: timeouts, 5xx,
// 429), and never outlives the elector's deadline for it.
//
// Cost: measured with a counting HTTP transport at the default timing
// (lease 15 s, renew every 3 s, retry every 1 s), about 1,200 storage
// transactions per hour for the active node (one renew per 3 s) and 3,600
// for each standby (one read per second; it tries to acquire only when the
// lease is free).
//
// A worked example with Azurite, the storage emulator (no Azure account):
//
//	scripts/install-azurite.sh
//	mkdir -p /tmp/azurite
//	.tools/azurite/node_modules/.bin/azurite-blob --blobHost 127.0.0.1 \
//	    --blobPort 10000 --location /tmp/azurite --skipApiVersionCheck &
//	export BATON_AZURITE='DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;'
//
// (--skipApiVersionCheck: the Go SDK speaks a newer storage API version
// than Azurite 3.37 knows; the calls baton makes are the same.) Then, in
// the baton.toml of two nodes:
//
//	[lease.azblob]
//	container   = "baton"
//	blob        = "leader"
//	auth        = "connection-string"
//	connection_string_env = "BATON_AZURITE"
//
// One node becomes active; "baton status" on either names it and its term.
// Stop it and the other is active within one retry interval; kill -9 it and
// the other takes over when the 15 s lease expires.
package azlock
