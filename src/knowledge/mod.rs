//! Product knowledge: each product's help pages, split into sections
//! ([`sections`]) and indexed with tantivy (BM25, English stemming, stop
//! words), so a how-to question is answered from the product's own docs and
//! cites them. Pages come from `[knowledge] dir`/`<product>/`, re-read when
//! the files change.

pub mod sections;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term, doc};

use crate::domain::ProductId;
pub use sections::{Page, Section};

/// Why the index could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("knowledge index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One retrieved section.
#[derive(Debug, Clone, PartialEq)]
pub struct Excerpt {
    pub title: String,
    pub url: String,
    pub text: String,
    pub score: f32,
}

/// The analyzer's name in the index.
const ANALYZER: &str = "docs_en";

/// Words that say nothing about which section answers a question: Lucene's
/// English stop words plus the words questions and chat are made of.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with", "how", "do", "does", "did", "i", "me", "my", "we",
    "our", "you", "your", "can", "could", "would", "should", "what", "where", "when", "which",
    "who", "why", "want", "need", "please", "hi", "hey", "s", "t", "get", "way", "just", "some",
    "any", "am", "have", "has",
];

fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(StopWordFilter::remove(
            STOP_WORDS.iter().map(|w| (*w).to_owned()),
        ))
        .filter(Stemmer::new(Language::English))
        .build()
}

#[derive(Clone, Copy)]
struct Fields {
    product: Field,
    /// `product \u{1f} doc id`: what an upsert or delete replaces.
    doc_key: Field,
    /// `product \u{1f} source`: what a reload of the folder replaces.
    source_key: Field,
    title: Field,
    url: Field,
    body: Field,
}

/// Cheap to clone; every clone searches and writes the same index.
#[derive(Clone)]
pub struct Knowledge {
    inner: Arc<Inner>,
}

struct Inner {
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    analyzer: TextAnalyzer,
    /// Sections one product may hold (the index stays bounded).
    max_sections: usize,
}

/// Where a page came from: the product's folder (replaced as a whole when it
/// changes) or the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Folder,
    Api,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Folder => "folder",
            Source::Api => "api",
        }
    }
}

fn key(product: &ProductId, part: &str) -> String {
    format!("{}\u{1f}{part}", product.as_str())
}

impl Knowledge {
    /// An empty index in memory.
    pub fn in_memory(max_sections: usize) -> Result<Self, Error> {
        Self::open(None, max_sections)
    }

    /// An empty index: memory-mapped files in `dir` (created if needed; what
    /// was there is cleared, since the pages are indexed again at start), or
    /// in memory. A folder that cannot be used (another process holds its
    /// lock) falls back to memory with a warning.
    pub fn open(dir: Option<&Path>, max_sections: usize) -> Result<Self, Error> {
        let Some(dir) = dir else {
            return Self::build(None, max_sections);
        };
        match Self::build(Some(dir), max_sections) {
            Ok(knowledge) => Ok(knowledge),
            Err(error) => {
                tracing::warn!(dir = %dir.display(), %error, "knowledge index kept in memory instead");
                Self::build(None, max_sections)
            }
        }
    }

    fn build(dir: Option<&Path>, max_sections: usize) -> Result<Self, Error> {
        let mut schema = Schema::builder();
        let text = TextOptions::default()
            .set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(ANALYZER)
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions),
            )
            .set_stored();
        let fields = Fields {
            product: schema.add_text_field("product", STRING),
            doc_key: schema.add_text_field("doc_key", STRING),
            source_key: schema.add_text_field("source_key", STRING),
            title: schema.add_text_field("title", text.clone()),
            url: schema.add_text_field("url", STORED),
            body: schema.add_text_field("body", text),
        };
        let schema = schema.build();
        let index = match dir {
            None => Index::create_in_ram(schema),
            Some(dir) => {
                let open = || -> Result<Index, Error> {
                    std::fs::create_dir_all(dir).map_err(|source| Error::Read {
                        path: dir.to_owned(),
                        source,
                    })?;
                    let files = tantivy::directory::MmapDirectory::open(dir)
                        .map_err(tantivy::TantivyError::from)?;
                    Ok(Index::open_or_create(files, schema.clone())?)
                };
                // An index of an older schema is rebuilt anyway: start afresh.
                open().or_else(|_| {
                    let _ = std::fs::remove_dir_all(dir);
                    open()
                })?
            }
        };
        index.tokenizers().register(ANALYZER, analyzer());
        // One indexing thread with tantivy's smallest arena: pages are few
        // and small, and searches must not compete with a busy writer.
        let mut writer: IndexWriter = index.writer_with_num_threads(1, 15_000_000)?;
        if dir.is_some() {
            writer.delete_all_documents()?;
            writer.commit()?;
        }
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Self {
            inner: Arc::new(Inner {
                reader,
                writer: Mutex::new(writer),
                fields,
                analyzer: analyzer(),
                max_sections,
            }),
        })
    }

    /// Replaces every page of `product` from `source` with `pages`
    /// (`(doc id, sections)`); returns the sections indexed.
    pub fn replace_source(
        &self,
        product: &ProductId,
        source: Source,
        pages: &[(String, Vec<Section>)],
    ) -> Result<usize, Error> {
        let f = self.inner.fields;
        self.write(|writer| {
            writer.delete_term(Term::from_field_text(
                f.source_key,
                &key(product, source.as_str()),
            ));
            let mut indexed = 0;
            'pages: for (doc_id, sections) in pages {
                for section in sections {
                    if indexed >= self.inner.max_sections {
                        tracing::warn!(
                            product = product.as_str(),
                            max = self.inner.max_sections,
                            "knowledge sections over the limit were not indexed"
                        );
                        break 'pages;
                    }
                    writer.add_document(self.document(product, source, doc_id, section))?;
                    indexed += 1;
                }
            }
            Ok(indexed)
        })
    }

    /// Runs `change` on the writer, commits it and makes it visible to
    /// searches; a change that fails is rolled back, so nothing of it is
    /// committed with the next one.
    fn write<T>(
        &self,
        change: impl FnOnce(&mut IndexWriter) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut writer = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
        let done = change(&mut writer).and_then(|out| {
            writer.commit()?;
            Ok(out)
        });
        if done.is_err() {
            let _ = writer.rollback();
        }
        drop(writer);
        let out = done?;
        self.inner.reader.reload()?;
        Ok(out)
    }

    /// Adds one page from the API, or replaces the page with the same id.
    pub fn replace_page(
        &self,
        product: &ProductId,
        doc_id: &str,
        sections: &[Section],
    ) -> Result<usize, Error> {
        self.write(|writer| {
            writer.delete_term(Term::from_field_text(
                self.inner.fields.doc_key,
                &key(product, doc_id),
            ));
            let kept = sections.len().min(self.inner.max_sections);
            for section in &sections[..kept] {
                writer.add_document(self.document(product, Source::Api, doc_id, section))?;
            }
            Ok(kept)
        })
    }

    /// Removes one page (from the folder or the API).
    pub fn remove_page(&self, product: &ProductId, doc_id: &str) -> Result<(), Error> {
        self.replace_page(product, doc_id, &[]).map(drop)
    }

    /// Whether `product` has any section indexed.
    pub fn has_pages(&self, product: &ProductId) -> bool {
        let query = TermQuery::new(
            Term::from_field_text(self.inner.fields.product, product.as_str()),
            IndexRecordOption::Basic,
        );
        self.inner
            .reader
            .searcher()
            .search(&query, &tantivy::collector::Count)
            .is_ok_and(|n| n > 0)
    }

    fn document(
        &self,
        product: &ProductId,
        source: Source,
        doc_id: &str,
        section: &Section,
    ) -> TantivyDocument {
        let f = self.inner.fields;
        doc!(
            f.product => product.as_str(),
            f.doc_key => key(product, doc_id),
            f.source_key => key(product, source.as_str()),
            f.title => section.title(),
            f.url => section.url.clone(),
            f.body => section.body.clone(),
        )
    }

    /// The sections that best answer `question`, best first: each must share
    /// most of the question's words (after stop words and stemming), so a
    /// question the docs do not cover finds nothing.
    pub fn search(&self, product: &ProductId, question: &str, limit: usize) -> Vec<Excerpt> {
        match self.try_search(product, question, limit) {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(%error, "knowledge search failed");
                Vec::new()
            }
        }
    }

    fn try_search(
        &self,
        product: &ProductId,
        question: &str,
        limit: usize,
    ) -> Result<Vec<Excerpt>, Error> {
        let f = self.inner.fields;
        let mut words: Vec<String> = Vec::new();
        let mut analyzer = self.inner.analyzer.clone();
        let mut stream = analyzer.token_stream(question);
        while stream.advance() {
            let word = stream.token().text.clone();
            if !words.contains(&word) {
                words.push(word);
            }
        }
        if words.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let clauses: Vec<(Occur, Box<dyn Query>)> = words
            .iter()
            .map(|word| {
                let in_title: Box<dyn Query> = Box::new(BoostQuery::new(
                    Box::new(TermQuery::new(
                        Term::from_field_text(f.title, word),
                        IndexRecordOption::WithFreqs,
                    )),
                    2.0,
                ));
                let in_body: Box<dyn Query> = Box::new(TermQuery::new(
                    Term::from_field_text(f.body, word),
                    IndexRecordOption::WithFreqs,
                ));
                let either: Box<dyn Query> = Box::new(BooleanQuery::union(vec![in_title, in_body]));
                (Occur::Should, either)
            })
            .collect();
        // Two words must both match ("undo a change" is not about priority
        // changes); of more, two thirds.
        let needed = match words.len() {
            n @ 0..=2 => n,
            n => (2 * n).div_ceil(3),
        };
        let query = BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.product, product.as_str()),
                    IndexRecordOption::Basic,
                )),
            ),
            (
                Occur::Must,
                Box::new(BooleanQuery::with_minimum_required_clauses(clauses, needed)),
            ),
        ]);
        let searcher = self.inner.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(limit))?;
        let mut found = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            let text = |field| {
                doc.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            found.push(Excerpt {
                title: text(f.title),
                url: text(f.url),
                text: text(f.body),
                score,
            });
        }
        Ok(found)
    }
}

/// The sections of a page sent through the API: `title` names it when its
/// text has no heading of its own.
pub fn api_page(title: &str, url: &str, body: &str, html: bool) -> Vec<Section> {
    sections::split(&Page {
        fallback_title: title,
        url,
        text: body,
        html,
    })
}

/// Files under `dir` that are pages (Markdown, HTML), as (doc id, path).
fn page_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if is_page(&path) {
                let id = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .replace('\\', "/");
                files.push((id, path));
            }
        }
    }
    files.sort();
    files
}

fn is_page(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("md" | "markdown" | "html" | "htm")
    )
}

/// What the files under a folder were when last read (to notice changes).
pub type Fingerprint = Vec<(String, Option<SystemTime>, u64)>;

/// The files' fingerprint: names, modification times, sizes.
fn fingerprint(files: &[(String, PathBuf)]) -> Fingerprint {
    files
        .iter()
        .map(|(id, path)| {
            let meta = std::fs::metadata(path).ok();
            (
                id.clone(),
                meta.as_ref().and_then(|m| m.modified().ok()),
                meta.map_or(0, |m| m.len()),
            )
        })
        .collect()
}

/// Reads every page under `dir` and its sections.
pub fn read_folder(dir: &Path) -> Result<Vec<(String, Vec<Section>)>, Error> {
    read_pages(page_files(dir))
}

fn read_pages(files: Vec<(String, PathBuf)>) -> Result<Vec<(String, Vec<Section>)>, Error> {
    let mut pages = Vec::new();
    for (id, path) in files {
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or(&id)
            .replace(['-', '_'], " ");
        let html = !matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("md" | "markdown")
        );
        let sections = sections::split(&Page {
            fallback_title: &stem,
            url: "",
            text: &text,
            html,
        });
        pages.push((id, sections));
    }
    Ok(pages)
}

/// Each product's folder (`root/<id>/`, or its own), indexed now and again
/// whenever its files change.
pub struct Folders {
    pub root: PathBuf,
    pub knowledge: Knowledge,
    /// Products whose pages are somewhere else than `root/<id>/`.
    own: HashMap<String, PathBuf>,
    seen: HashMap<String, Fingerprint>,
}

impl Folders {
    pub fn new(root: PathBuf, knowledge: Knowledge) -> Self {
        Self {
            root,
            knowledge,
            own: HashMap::new(),
            seen: HashMap::new(),
        }
    }

    /// `product`'s pages are in `dir` rather than under the root.
    pub fn with_dir(mut self, product: &str, dir: PathBuf) -> Self {
        self.own.insert(product.to_owned(), dir);
        self
    }

    fn dir_of(&self, product: &ProductId) -> PathBuf {
        self.own
            .get(product.as_str())
            .cloned()
            .unwrap_or_else(|| self.root.join(product.as_str()))
    }

    /// Re-indexes the folders of `products` whose files changed; returns
    /// how many were re-indexed.
    pub fn refresh<'a>(&mut self, products: impl IntoIterator<Item = &'a ProductId>) -> usize {
        let mut refreshed = 0;
        for product in products {
            // One walk of the folder serves the check and the read.
            let files = page_files(&self.dir_of(product));
            let now = fingerprint(&files);
            if self.seen.get(product.as_str()) == Some(&now) {
                continue;
            }
            let indexed = read_pages(files).and_then(|pages| {
                self.knowledge
                    .replace_source(product, Source::Folder, &pages)
            });
            match indexed {
                Ok(sections) => {
                    tracing::info!(product = product.as_str(), sections, "knowledge indexed");
                    self.seen.insert(product.as_str().to_owned(), now);
                    refreshed += 1;
                }
                Err(error) => {
                    tracing::warn!(product = product.as_str(), %error, "knowledge not indexed");
                }
            }
        }
        refreshed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product() -> ProductId {
        ProductId::parse("acme").unwrap()
    }

    fn page(id: &str, text: &str) -> (String, Vec<Section>) {
        (
            id.to_owned(),
            sections::split(&Page {
                fallback_title: id,
                url: "",
                text,
                html: false,
            }),
        )
    }

    #[test]
    fn questions_find_their_section_and_unrelated_ones_find_nothing() {
        let k = Knowledge::in_memory(1000).unwrap();
        let pages = [
            page(
                "archive.md",
                "# Archive a project\n\n## Archive\n\nOpen the project, click 'Archive'.\n\n## Restore\n\nOpen 'Archived' and click 'Restore'.",
            ),
            page(
                "priority.md",
                "# Priority\n\n## Change a project's priority\n\nIn the edit dialog pick a priority, then 'Save changes'.",
            ),
        ];
        assert_eq!(
            k.replace_source(&product(), Source::Folder, &pages)
                .unwrap(),
            3
        );
        let found = k.search(&product(), "how do I archive a project?", 3);
        assert_eq!(
            found[0].title, "Archive a project \u{2014} Archive",
            "{found:#?}"
        );
        let found = k.search(&product(), "How do I change a project's priority?", 3);
        assert_eq!(
            found[0].title,
            "Priority \u{2014} Change a project's priority"
        );
        assert!(k.search(&product(), "is there a dark mode?", 3).is_empty());
        assert!(k.search(&product(), "can I undo a change?", 3).is_empty());
        assert!(
            k.search(&product(), "how do I?", 3).is_empty(),
            "stop words only"
        );
        let other = ProductId::parse("other").unwrap();
        assert!(
            k.search(&other, "archive a project", 3).is_empty(),
            "per product"
        );
        // A reload replaces the folder's pages.
        k.replace_source(&product(), Source::Folder, &pages[1..])
            .unwrap();
        assert!(k.search(&product(), "restore archived", 3).is_empty());
    }

    #[test]
    fn an_index_on_disk_starts_empty_and_searches_like_one_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let pages = [page("export.md", "# Export\n\nClick 'Export CSV'.")];
        {
            let k = Knowledge::open(Some(&path), 1000).unwrap();
            k.replace_source(&product(), Source::Folder, &pages)
                .unwrap();
            assert_eq!(k.search(&product(), "export csv", 3)[0].title, "Export");
        }
        assert!(path.join("meta.json").is_file(), "kept on disk");
        // Reopened, it holds nothing until the pages are indexed again.
        let k = Knowledge::open(Some(&path), 1000).unwrap();
        assert!(!k.has_pages(&product()));
        k.replace_source(&product(), Source::Folder, &pages)
            .unwrap();
        assert_eq!(k.search(&product(), "export csv", 3).len(), 1);
    }

    #[test]
    fn folders_are_indexed_again_only_when_their_files_change() {
        let dir = tempfile::tempdir().unwrap();
        let product_dir = dir.path().join("acme");
        std::fs::create_dir_all(product_dir.join("sub")).unwrap();
        std::fs::write(
            product_dir.join("export.md"),
            "# Export\n\nClick 'Export CSV'.",
        )
        .unwrap();
        std::fs::write(product_dir.join("notes.txt"), "ignored").unwrap();
        let k = Knowledge::in_memory(1000).unwrap();
        let mut folders = Folders::new(dir.path().to_path_buf(), k.clone());
        assert_eq!(folders.refresh([&product()]), 1);
        assert_eq!(folders.refresh([&product()]), 0, "nothing changed");
        assert_eq!(k.search(&product(), "export csv", 3)[0].title, "Export");
        std::fs::write(
            product_dir.join("sub/invite.html"),
            "<h1>Invite</h1><p>Click 'Invite teammate'.</p>",
        )
        .unwrap();
        assert_eq!(folders.refresh([&product()]), 1);
        assert_eq!(
            k.search(&product(), "invite a teammate", 3)[0].title,
            "Invite"
        );

        // A product of its own folder reads that one instead.
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(
            elsewhere.path().join("billing.md"),
            "# Billing\n\nOpen 'Invoices'.",
        )
        .unwrap();
        let mut folders = Folders::new(dir.path().to_path_buf(), k.clone())
            .with_dir("acme", elsewhere.path().to_path_buf());
        assert_eq!(folders.refresh([&product()]), 1);
        assert_eq!(k.search(&product(), "invoices", 3)[0].title, "Billing");
        assert!(
            k.search(&product(), "export csv", 3).is_empty(),
            "the root's folder is not read"
        );
    }
}
