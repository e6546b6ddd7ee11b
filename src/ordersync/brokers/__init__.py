"""Broker adapters: each implements the Broker and BrokerStream ports for one venue."""
