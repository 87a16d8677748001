"""Test drivers: one per service, the words its tests speak (``create_list``,
``wait_for_delivery``) instead of its URLs, over HTTP in-process or on the network."""
