"""Opening the tunnel by the chosen routes: failover, chains hop by hop, HTTP CONNECT and its authentication, SOCKS."""
