//! The small SOAP layer: envelopes out, element trees in.
//!
//! vim25 answers are parsed into a plain [`Element`] tree (local names, attributes,
//! text) that the typed calls in [`crate::client`] read with [`Element::child`] and
//! friends. Requests are built from fixed templates with [`esc`] around every value.

use quick_xml::events::Event;
use quick_xml::Reader;

/// A managed object reference (`<obj type="VirtualMachine">vm-42</obj>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MoRef {
    /// The managed object type, e.g. `VirtualMachine`.
    pub kind: String,
    /// The value, e.g. `vm-42`.
    pub value: String,
}

impl MoRef {
    /// A reference of `kind` to `value`.
    pub fn new(kind: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            value: value.into(),
        }
    }

    /// The reference as an element named `tag`.
    pub fn xml(&self, tag: &str) -> String {
        format!(
            "<{tag} type=\"{}\">{}</{tag}>",
            esc(&self.kind),
            esc(&self.value)
        )
    }
}

/// One parsed XML element: local name, attributes (raw keys), text and children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Local name (prefix stripped).
    pub name: String,
    /// Attributes as (raw key, unescaped value).
    pub attrs: Vec<(String, String)>,
    /// Concatenated text content of this element (not of its children).
    pub text: String,
    /// Child elements in document order.
    pub children: Vec<Element>,
}

impl Element {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the child named `name`.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// The first descendant (depth first, self included) named `name`.
    pub fn find(&self, name: &str) -> Option<&Element> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }

    /// The `xsi:type` attribute, whatever the prefix.
    pub fn xsi_type(&self) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k.ends_with(":type"))
            .map(|(_, v)| v.as_str())
    }

    /// This element written back as request XML: its `xsi:type` and `type` (moref)
    /// attributes, escaped text and children in order (namespace declarations and
    /// other attributes are dropped). Used to send a device read from a VM back in a
    /// `ReconfigVM_Task` edit.
    pub fn to_xml(&self) -> String {
        let mut out = format!("<{}", self.name);
        for (k, v) in &self.attrs {
            if k.ends_with(":type") {
                out.push_str(&format!(" xsi:type=\"{}\"", esc(v)));
            } else if k == "type" {
                out.push_str(&format!(" type=\"{}\"", esc(v)));
            }
        }
        out.push('>');
        out.push_str(&esc(&self.text));
        for c in &self.children {
            out.push_str(&c.to_xml());
        }
        out.push_str(&format!("</{}>", self.name));
        out
    }

    /// This element read as a managed object reference (its `type` attribute and text).
    pub fn moref(&self) -> Option<MoRef> {
        let kind = self
            .attrs
            .iter()
            .find(|(k, _)| k == "type")
            .map(|(_, v)| v.clone())?;
        Some(MoRef::new(kind, self.text.trim()))
    }
}

/// Errors of the XML layer.
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    /// The document is not well-formed.
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// The document has no root element.
    #[error("empty XML document")]
    Empty,
}

fn local(name: &[u8]) -> String {
    let s = String::from_utf8_lossy(name);
    match s.rsplit_once(':') {
        Some((_, l)) => l.to_string(),
        None => s.into_owned(),
    }
}

fn open(e: &quick_xml::events::BytesStart<'_>) -> Result<Element, XmlError> {
    let mut el = Element {
        name: local(e.name().as_ref()),
        ..Default::default()
    };
    for a in e.attributes() {
        let a = a.map_err(|err| XmlError::Malformed(err.to_string()))?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let value = a
            .unescape_value()
            .map_err(|err| XmlError::Malformed(err.to_string()))?
            .into_owned();
        el.attrs.push((key, value));
    }
    Ok(el)
}

/// Parses a whole document into its root element.
pub fn parse(xml: &str) -> Result<Element, XmlError> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Element> = vec![Element::default()];
    loop {
        match reader
            .read_event()
            .map_err(|e| XmlError::Malformed(e.to_string()))?
        {
            Event::Start(e) => stack.push(open(&e)?),
            Event::Empty(e) => {
                let el = open(&e)?;
                if let Some(top) = stack.last_mut() {
                    top.children.push(el);
                }
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| XmlError::Malformed("unbalanced end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => return Err(XmlError::Malformed("unbalanced end tag".into())),
                }
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|e| XmlError::Malformed(e.to_string()))?;
                let s = quick_xml::escape::unescape(&s)
                    .map_err(|e| XmlError::Malformed(e.to_string()))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&s);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(|e| XmlError::Malformed(e.to_string()))?;
                let raw = format!("&{name};");
                let s = quick_xml::escape::unescape(&raw)
                    .map_err(|e| XmlError::Malformed(e.to_string()))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&s);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.len() != 1 {
        return Err(XmlError::Malformed("unclosed element".into()));
    }
    stack
        .pop()
        .and_then(|doc| doc.children.into_iter().next())
        .ok_or(XmlError::Empty)
}

/// Escapes text for an element body or attribute value.
pub fn esc(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// Wraps a request body in a SOAP envelope (the body's default namespace is `urn:vim25`).
pub fn envelope(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body xmlns=\"urn:vim25\">{body}</soapenv:Body></soapenv:Envelope>"
    )
}

/// A SOAP fault: the vim25 fault type (e.g. `InvalidLogin`) and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The fault type from the detail's `xsi:type` (or element name), e.g. `DuplicateName`.
    pub kind: String,
    /// The fault string.
    pub message: String,
    /// The fault detail element, for fault-specific fields.
    pub detail: Option<Element>,
}

impl Fault {
    /// Reads a fault from a `Fault` element (SOAP) or a `LocalizedMethodFault` (task error).
    pub fn from_element(el: &Element) -> Self {
        // SOAP: <Fault><faultcode/><faultstring/><detail><XFault xsi:type="X"/></detail></Fault>
        if let Some(detail) = el.child("detail") {
            let inner = detail.children.first();
            let kind = inner
                .and_then(|i| i.xsi_type().map(str::to_string))
                .or_else(|| inner.map(|i| i.name.trim_end_matches("Fault").to_string()))
                .unwrap_or_else(|| "Fault".into());
            return Fault {
                kind,
                message: el.child_text("faultstring").unwrap_or_default().to_string(),
                detail: inner.cloned(),
            };
        }
        // Task: <error><fault xsi:type="X"/><localizedMessage/></error>
        let fault = el.child("fault");
        Fault {
            kind: fault
                .and_then(|f| f.xsi_type())
                .unwrap_or("Fault")
                .to_string(),
            message: el
                .child_text("localizedMessage")
                .unwrap_or_default()
                .to_string(),
            detail: fault.cloned(),
        }
    }
}

/// Finds the fault in a response envelope, if it holds one.
pub fn fault_of(doc: &Element) -> Option<Fault> {
    doc.find("Body")
        .and_then(|b| b.child("Fault"))
        .map(Fault::from_element)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_retrieve_properties_answer() {
        let xml = r#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="VirtualMachine">vm-1</obj><propSet><name>name</name><val xsi:type="xsd:string">a &amp; b</val></propSet></objects></returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#;
        let doc = parse(xml).unwrap();
        let objs = doc.find("objects").unwrap();
        assert_eq!(
            objs.child("obj").unwrap().moref(),
            Some(MoRef::new("VirtualMachine", "vm-1"))
        );
        let val = objs.child("propSet").unwrap().child("val").unwrap();
        assert_eq!(val.text, "a & b");
        assert_eq!(val.xsi_type(), Some("xsd:string"));
        assert!(fault_of(&doc).is_none());
    }

    #[test]
    fn parses_fault() {
        let xml = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Login failed</faultstring><detail><InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin"></InvalidLoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#;
        let f = fault_of(&parse(xml).unwrap()).unwrap();
        assert_eq!(f.kind, "InvalidLogin");
        assert_eq!(f.message, "Login failed");
    }

    #[test]
    fn escapes_values() {
        assert_eq!(esc("<a&\"b\">"), "&lt;a&amp;&quot;b&quot;&gt;");
        assert_eq!(
            MoRef::new("Folder", "group-1").xml("folder"),
            "<folder type=\"Folder\">group-1</folder>"
        );
    }

    #[test]
    fn malformed_is_an_error() {
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("").is_err());
    }
}
