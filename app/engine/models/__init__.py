"""Model providers behind one streaming protocol (base.ModelClient)."""
